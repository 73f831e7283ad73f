//! Requests: the four event modes, their options, and the entries inside them
//! (`shared/spec/fluent.md` §1.2, §1.4, §1.10, §2.3).
//!
//! The mode is chosen by the type of element 1, as fluentd and Fluent Bit do: an array is
//! Forward, a str or bin is PackedForward (compressed when the option says so or the bytes
//! start with a gzip/zstd magic, as Fluent Bit sniffs), anything else is Message. Forward
//! entries and packed streams are both "a run of `[time, record]` values", so one iterator
//! serves both; Message mode is a run of one.

use std::io::Read;

use bytes::Bytes;

use super::msgpack::{self, Reader, Value};
use super::time::{read_time, EventTime, TimeError};

/// How a packed entry stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain msgpack (`compressed` absent or `"text"`).
    None,
    /// One or more concatenated gzip members (fluentd writes one member per buffer append).
    Gzip,
    /// zstd frames (fluentd >= 1.19 `compress zstd`).
    Zstd,
}

/// The option map (§1.4); unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The chunk id to echo in the ack, byte for byte; `None`: no ack wanted.
    pub chunk: Option<Bytes>,
    /// The sender's event count (a hint).
    pub size: Option<u64>,
    /// `fluent_signal` (v1.5): 0 logs; 1 metrics, 2 traces, 3 blobs, 4 profiles.
    pub fluent_signal: i64,
}

/// What a request carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Message mode: one event, already parsed (an invalid one is kept as its error so it
    /// is counted and dropped like an invalid entry, and the request is still acked).
    Message(Result<(EventTime, Bytes), EntryError>),
    /// Forward or PackedForward: a run of entries, possibly compressed.
    Entries {
        /// The encoded entries, back to back.
        stream: Bytes,
        /// How `stream` is compressed.
        compression: Compression,
    },
}

/// One decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The tag: raw bytes (not necessarily UTF-8).
    pub tag: Bytes,
    /// The events.
    pub body: Body,
    /// The options.
    pub options: Options,
}

/// A frame that is complete but cannot be stored. The connection continues (the framing
/// is intact); the request gets no ack, so the sender retries or gives up per its policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The top-level value is not an array (the spec says to ignore it).
    #[error("request is not an array")]
    NotArray,
    /// An array of fewer than 2 or more than 4 elements.
    #[error("request has {0} elements")]
    BadLength(u32),
    /// Element 0 is not a str or bin.
    #[error("tag is not a string")]
    BadTag,
    /// The option element is neither a map nor nil, or a key has a wrong-typed value.
    #[error("invalid option: {0}")]
    BadOption(&'static str),
    /// `compressed` names a method kura does not know.
    #[error("unknown compression {0:?}")]
    UnknownCompression(String),
    /// The compressed bytes do not inflate.
    #[error("cannot decompress entries: {0}")]
    Decompress(String),
    /// Inflating would exceed `decompression_size_limit` (a gzip/zstd bomb).
    #[error("decompressed entries exceed {0} bytes")]
    DecompressedTooLarge(u64),
    /// The records would map to far more bytes than the request holds.
    #[error("{0}")]
    Oversized(String),
    /// The entry stream ends inside a value or holds a reserved byte.
    #[error("entry stream is corrupt: {0}")]
    Corrupt(#[from] msgpack::Error),
}

impl DecodeError {
    /// Returns the closed-set label used by `kura_forward_decode_errors_total{reason}`.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::NotArray => "not_array",
            DecodeError::BadLength(_) => "bad_length",
            DecodeError::BadTag => "bad_tag",
            DecodeError::BadOption(_) => "bad_option",
            DecodeError::UnknownCompression(_) => "unknown_compression",
            DecodeError::Decompress(_) => "decompress",
            DecodeError::DecompressedTooLarge(_) => "decompressed_too_large",
            DecodeError::Corrupt(_) => "corrupt",
            DecodeError::Oversized(_) => "mapped_too_large",
        }
    }
}

/// Why one event is dropped (fluentd's `skip_invalid_event`); the rest of the request is
/// stored and acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The entry is not a 2-element array.
    #[error("entry is not [time, record]")]
    Shape,
    /// The time has a type no client uses.
    #[error("invalid event time")]
    Time,
    /// The record is not a map.
    #[error("record is not a map")]
    Record,
}

/// Reads the tag, mode and options of one complete frame.
pub fn decode(frame: &Bytes) -> Result<Request, DecodeError> {
    let mut r = Reader::new(frame);
    let n = match r.next()? {
        Value::Array(n) => n,
        _ => return Err(DecodeError::NotArray),
    };
    if !(2..=4).contains(&n) {
        return Err(DecodeError::BadLength(n));
    }
    let tag = r.next()?.bytes().ok_or(DecodeError::BadTag)?;
    let tag = frame.slice_ref(tag);
    let mut body = match r.clone().next()? {
        Value::Array(count) => {
            r.next()?;
            let start = r.position();
            for _ in 0..count {
                r.skip()?;
            }
            Body::Entries {
                stream: frame.slice(start..r.position()),
                compression: Compression::None,
            }
        }
        Value::Str(p) | Value::Bin(p) => {
            r.next()?;
            Body::Entries {
                stream: frame.slice_ref(p),
                compression: Compression::None,
            }
        }
        _ => {
            if n < 3 {
                return Err(DecodeError::BadLength(n));
            }
            Body::Message(read_event_parts(&mut r, frame))
        }
    };
    let remaining = n as usize
        - if matches!(body, Body::Message(_)) {
            3
        } else {
            2
        };
    let (options, compressed) = match remaining {
        0 => (empty_options(), None),
        1 => read_options(&mut r)?,
        _ => return Err(DecodeError::BadLength(n)),
    };
    if let Body::Entries {
        stream,
        compression,
    } = &mut body
    {
        *compression = match compressed.as_deref() {
            None | Some(b"text") => sniff(stream),
            Some(b"gzip") => Compression::Gzip,
            Some(b"zstd") => Compression::Zstd,
            Some(other) => {
                return Err(DecodeError::UnknownCompression(
                    String::from_utf8_lossy(other).into_owned(),
                ))
            }
        };
    }
    Ok(Request { tag, body, options })
}

/// Detects compressed data sent without (or with a wrong) `compressed` option, as Fluent
/// Bit does. Safe: a plain entry starts with an array header, never 0x1f or 0x28.
fn sniff(stream: &[u8]) -> Compression {
    match stream {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

fn empty_options() -> Options {
    Options {
        chunk: None,
        size: None,
        fluent_signal: 0,
    }
}

/// Reads the option element: a map, or nil / anything else meaning "no options" (§1.4:
/// "Treat non-map options as no options"). Returns the `compressed` value separately.
fn read_options(r: &mut Reader<'_>) -> Result<(Options, Option<Vec<u8>>), DecodeError> {
    let mut opts = empty_options();
    let mut compressed = None;
    let pairs = match r.clone().next()? {
        Value::Map(n) => {
            r.next()?;
            n
        }
        _ => {
            r.skip()?;
            return Ok((opts, None));
        }
    };
    for _ in 0..pairs {
        // Whole values: a key or value that is a container is skipped with its contents.
        let key = Reader::new(r.skip()?).next()?;
        let val = Reader::new(r.skip()?).next()?;
        let key = key.bytes().unwrap_or_default();
        match key {
            b"chunk" => {
                let id = val
                    .bytes()
                    .ok_or(DecodeError::BadOption("chunk is not a string"))?;
                opts.chunk = Some(Bytes::copy_from_slice(id));
            }
            b"size" => {
                opts.size = match val {
                    Value::Uint(n) => Some(n),
                    Value::Int(n) => u64::try_from(n).ok(),
                    _ => None,
                }
            }
            b"compressed" => {
                compressed = Some(
                    val.bytes()
                        .ok_or(DecodeError::BadOption("compressed is not a string"))?
                        .to_vec(),
                )
            }
            b"fluent_signal" => {
                opts.fluent_signal = match val {
                    Value::Uint(n) => i64::try_from(n).unwrap_or(i64::MAX),
                    Value::Int(n) => n,
                    _ => return Err(DecodeError::BadOption("fluent_signal is not an integer")),
                }
            }
            _ => {}
        }
    }
    Ok((opts, compressed))
}

/// Reads the time and record of Message mode; an invalid event is returned as its error
/// after skipping both values, so the option element can still be read.
fn read_event_parts(r: &mut Reader<'_>, frame: &Bytes) -> Result<(EventTime, Bytes), EntryError> {
    // The frame is complete, so whole values can always be skipped.
    let time = r.skip().map_err(|_| EntryError::Shape)?;
    let rec_start = r.position();
    let rec = r.skip().map_err(|_| EntryError::Shape)?;
    let time = read_time(&mut Reader::new(time)).map_err(|_| EntryError::Time)?;
    if !is_map(rec) {
        return Err(EntryError::Record);
    }
    Ok((time, frame.slice(rec_start..rec_start + rec.len())))
}

/// Reports whether encoded bytes start with a map header.
fn is_map(value: &[u8]) -> bool {
    matches!(value.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

/// Inflates a compressed entry stream, refusing to produce more than `limit` bytes.
pub fn decompress(
    data: &[u8],
    compression: Compression,
    limit: u64,
) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity((data.len() * 4).min(limit as usize));
    let read = match compression {
        Compression::None => return Ok(data.to_vec()),
        // MultiGzDecoder: fluentd's compressed chunks are several gzip members back to
        // back (§2.3); a single-member decoder would silently stop after the first.
        Compression::Gzip => flate2::read::MultiGzDecoder::new(data)
            .take(limit + 1)
            .read_to_end(&mut out),
        Compression::Zstd => zstd::stream::read::Decoder::with_buffer(data)
            .and_then(|d| d.take(limit + 1).read_to_end(&mut out)),
    };
    read.map_err(|e| DecodeError::Decompress(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(DecodeError::DecompressedTooLarge(limit));
    }
    Ok(out)
}

/// One event of a run: its time and the raw bytes of its record map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The event time.
    pub time: EventTime,
    /// The record, a complete msgpack map.
    pub record: &'a [u8],
}

/// Iterates the `[time, record]` entries of a Forward array or a packed stream.
pub struct Entries<'a> {
    r: Reader<'a>,
}

/// What a step over an entry run gives: a value made from a good entry, an invalid
/// entry (`Err(Ok(_))`, iteration continues) or a corrupt stream (`Err(Err(_))`, the end).
pub type Step<T> = Result<T, Result<EntryError, msgpack::Error>>;

impl<'a> Entries<'a> {
    /// Starts at the first entry of `stream`.
    pub fn new(stream: &'a [u8]) -> Self {
        Entries {
            r: Reader::new(stream),
        }
    }

    /// Reads the next entry's header and time, then lets `convert` read its record map
    /// straight from the stream, so a good entry is walked once, not skipped and then
    /// walked again. Anything else is skipped whole and read again from its own bytes to
    /// say what is wrong with it.
    pub fn next_with<T>(
        &mut self,
        convert: impl FnOnce(EventTime, &mut Reader<'a>) -> Result<T, msgpack::Error>,
    ) -> Option<Step<T>> {
        if self.r.is_empty() {
            return None;
        }
        let start = self.r.clone();
        let head = match self.r.next() {
            Ok(Value::Array(2)) => read_time(&mut self.r)
                .ok()
                .filter(|_| is_map(self.r.rest())),
            _ => None,
        };
        if let Some(time) = head {
            return Some(match convert(time, &mut self.r) {
                Ok(v) => Ok(v),
                Err(e) => {
                    self.r = Reader::new(&[]);
                    Err(Err(e))
                }
            });
        }
        self.r = start;
        Some(match self.r.skip() {
            Ok(whole) => Err(Ok(entry(&mut Reader::new(whole))
                .err()
                .unwrap_or(EntryError::Shape))),
            Err(e) => {
                // Nothing after a corrupt value can be trusted: stop for good.
                self.r = Reader::new(&[]);
                Err(Err(e))
            }
        })
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Step<Entry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with(|time, r| {
            Ok(Entry {
                time,
                record: r.skip()?,
            })
        })
    }
}

fn entry<'a>(e: &mut Reader<'a>) -> Result<Entry<'a>, EntryError> {
    match e.next() {
        Ok(Value::Array(2)) => {}
        _ => return Err(EntryError::Shape),
    }
    let time = read_time(e).map_err(|err| match err {
        TimeError::InvalidType => EntryError::Time,
        TimeError::Msgpack(_) => EntryError::Shape,
    })?;
    let record = e.skip().map_err(|_| EntryError::Shape)?;
    if !is_map(record) {
        return Err(EntryError::Record);
    }
    Ok(Entry { time, record })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn req(bytes: &[u8]) -> Result<Request, DecodeError> {
        decode(&Bytes::copy_from_slice(bytes))
    }

    const T: EventTime = EventTime::At {
        secs: 1441588984,
        nanos: 0,
    };

    /// Collects the entries of a request body (inflating if needed).
    fn entries(body: &Body) -> Vec<Result<(EventTime, Vec<u8>), EntryError>> {
        match body {
            Body::Message(m) => vec![m.clone().map(|(t, r)| (t, r.to_vec()))],
            Body::Entries {
                stream,
                compression,
            } => {
                let raw = decompress(stream, *compression, 1 << 20).unwrap();
                Entries::new(&raw)
                    .map(|e| match e {
                        Ok(e) => Ok((e.time, e.record.to_vec())),
                        Err(Ok(err)) => Err(err),
                        Err(Err(err)) => panic!("corrupt: {err}"),
                    })
                    .collect()
            }
        }
    }

    // {"message": "bar"}
    const BAR: &[u8] = b"\x81\xa7message\xa3bar";

    #[test]
    fn message_mode_with_and_without_option() {
        // ["tag.name", 1441588984, {"message": "bar"}, {}]  (fluent-logger-golang shape)
        let r = req(b"\x94\xa8tag.name\xce\x55\xec\xe6\xf8\x81\xa7message\xa3bar\x80").unwrap();
        assert_eq!(&r.tag[..], b"tag.name");
        assert_eq!(entries(&r.body), vec![Ok((T, BAR.to_vec()))]);
        assert_eq!(r.options.chunk, None);
        // ["tag.name", 1441588984, {"message": "bar"}]
        let r = req(b"\x93\xa8tag.name\xce\x55\xec\xe6\xf8\x81\xa7message\xa3bar").unwrap();
        assert_eq!(entries(&r.body), vec![Ok((T, BAR.to_vec()))]);
        // ["t", 1441588984, {"message": "bar"}, {"chunk": "abc"}]  -> ack wanted
        let r = req(b"\x94\xa1t\xce\x55\xec\xe6\xf8\x81\xa7message\xa3bar\x81\xa5chunk\xa3abc")
            .unwrap();
        assert_eq!(r.options.chunk.as_deref(), Some(&b"abc"[..]));
        // ["t", 1441588984, "not a map", {"chunk": "x"}]: the event is invalid, the
        // request still decodes (and is acked)
        let r = req(b"\x94\xa1t\xce\x55\xec\xe6\xf8\xa1x\x81\xa5chunk\xa1x").unwrap();
        assert_eq!(entries(&r.body), vec![Err(EntryError::Record)]);
        assert_eq!(r.options.chunk.as_deref(), Some(&b"x"[..]));
        // ["t", true, {...}]: bad time type (a str here would mean PackedForward)
        let r = req(b"\x93\xa1t\xc3\x81\xa7message\xa3bar").unwrap();
        assert_eq!(entries(&r.body), vec![Err(EntryError::Time)]);
    }

    #[test]
    fn forward_mode_plain_and_with_v15_metadata() {
        // ["tag.name", [[1441588984, {"message": "foo"}]]]  (spec §1.11, Fluent Bit default)
        let r = req(b"\x92\xa8tag.name\x91\x92\xce\x55\xec\xe6\xf8\x81\xa7message\xa3foo").unwrap();
        assert_eq!(
            entries(&r.body),
            vec![Ok((T, b"\x81\xa7message\xa3foo".to_vec()))]
        );
        assert_eq!(r.options.chunk, None);
        // ["t", [[[EventTime(1441588984, 7), {}], {"message": "bar"}], [1, "bad"]], nil]
        // Fluent Bit >= 5.0.5 (retain_metadata_in_forward_mode), then an invalid entry.
        let r = req(b"\x93\xa1t\x92\x92\x92\xd7\x00\x55\xec\xe6\xf8\x00\x00\x00\x07\x80\x81\xa7message\xa3bar\x92\x01\xa3bad\xc0")
            .unwrap();
        assert_eq!(
            entries(&r.body),
            vec![
                Ok((
                    EventTime::At {
                        secs: 1441588984,
                        nanos: 7
                    },
                    BAR.to_vec()
                )),
                Err(EntryError::Record)
            ]
        );
    }

    /// Builds fluentd's PackedForward: 93, tag, str32 entries, {"size", "compressed",
    /// "chunk"} in Ruby insertion order (spec §2b.2).
    fn fluentd_packed(tag: &[u8], entries: &[u8], size: u64, compressed: &str) -> Vec<u8> {
        let mut out = vec![0x93];
        msgpack::put_str(&mut out, tag);
        out.push(0xdb);
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(entries);
        msgpack::put_map_len(&mut out, 3);
        msgpack::put_str(&mut out, b"size");
        msgpack::put_uint(&mut out, size);
        msgpack::put_str(&mut out, b"compressed");
        msgpack::put_str(&mut out, compressed.as_bytes());
        msgpack::put_str(&mut out, b"chunk");
        msgpack::put_str(&mut out, b"p8n9gmxTQVC8/nh2wlKKeQ==\n");
        out
    }

    fn two_entries() -> Vec<u8> {
        // [EventTime(1441588984,0), {"message":"bar"}] twice
        let one = b"\x92\xd7\x00\x55\xec\xe6\xf8\x00\x00\x00\x00\x81\xa7message\xa3bar";
        [&one[..], &one[..]].concat()
    }

    #[test]
    fn packed_forward_as_fluentd_sends_it_str32() {
        let r = req(&fluentd_packed(b"app.log", &two_entries(), 2, "text")).unwrap();
        assert_eq!(&r.tag[..], b"app.log");
        assert_eq!(
            r.options.chunk.as_deref(),
            Some(&b"p8n9gmxTQVC8/nh2wlKKeQ==\n"[..])
        );
        assert_eq!(r.options.size, Some(2));
        assert_eq!(entries(&r.body), vec![Ok((T, BAR.to_vec())); 2]);
    }

    #[test]
    fn packed_forward_as_bin_without_options() {
        // ["t", bin8 <entries>]
        let e = two_entries();
        let mut f = vec![0x92, 0xa1, b't', 0xc4, e.len() as u8];
        f.extend_from_slice(&e);
        let r = req(&f).unwrap();
        assert_eq!(entries(&r.body).len(), 2);
        // ["t", bin8 <entries>, nil]: nil options mean none
        f[0] = 0x93;
        f.push(0xc0);
        assert_eq!(req(&f).unwrap().options.chunk, None);
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        g.write_all(data).unwrap();
        g.finish().unwrap()
    }

    #[test]
    fn compressed_gzip_with_several_members() {
        // fluentd's buffer writes one gzip member per append: two members, one entry each.
        let e = two_entries();
        let (a, b) = e.split_at(e.len() / 2);
        let z = [gzip(a), gzip(b)].concat();
        let r = req(&fluentd_packed(b"t", &z, 2, "gzip")).unwrap();
        assert!(matches!(
            r.body,
            Body::Entries {
                compression: Compression::Gzip,
                ..
            }
        ));
        assert_eq!(entries(&r.body), vec![Ok((T, BAR.to_vec())); 2]);
        // "text" with gzip bytes is sniffed, as Fluent Bit does.
        let r = req(&fluentd_packed(b"t", &z, 2, "text")).unwrap();
        assert_eq!(entries(&r.body).len(), 2);
    }

    #[test]
    fn compressed_zstd() {
        let z = zstd::encode_all(&two_entries()[..], 3).unwrap();
        let r = req(&fluentd_packed(b"t", &z, 2, "zstd")).unwrap();
        assert_eq!(entries(&r.body), vec![Ok((T, BAR.to_vec())); 2]);
    }

    #[test]
    fn decompression_is_capped() {
        // 64 MiB of zeros gzip to ~64 KiB: a bomb for a 1 MiB limit.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        let r = req(&fluentd_packed(b"t", &bomb, 1, "gzip")).unwrap();
        let Body::Entries {
            stream,
            compression,
        } = &r.body
        else {
            panic!("entries expected")
        };
        assert_eq!(
            decompress(stream, *compression, 1 << 20),
            Err(DecodeError::DecompressedTooLarge(1 << 20))
        );
        assert!(matches!(
            decompress(b"\x1f\x8bgarbage", Compression::Gzip, 1 << 20),
            Err(DecodeError::Decompress(_))
        ));
    }

    #[test]
    fn malformed_requests_are_named() {
        assert_eq!(req(b"\x81\xa1a\x01"), Err(DecodeError::NotArray)); // {"a": 1}
        assert_eq!(req(b"\x91\xa1t"), Err(DecodeError::BadLength(1))); // ["t"]
        assert_eq!(req(b"\x92\x01\x90"), Err(DecodeError::BadTag)); // [1, []]
        assert_eq!(req(b"\x92\xa1t\x05"), Err(DecodeError::BadLength(2))); // ["t", 5]
                                                                           // ["t", "", {"compressed": "lz4"}]
        assert_eq!(
            req(b"\x93\xa1t\xa0\x81\xaacompressed\xa3lz4"),
            Err(DecodeError::UnknownCompression("lz4".into()))
        );
        // ["t", [], {"chunk": 5}]
        assert!(matches!(
            req(b"\x93\xa1t\x90\x81\xa5chunk\x05"),
            Err(DecodeError::BadOption(_))
        ));
        // ["t", [], {"other": [1, {"x": 2}], "chunk": "c"}]: unknown keys of any shape skip
        let r = req(b"\x93\xa1t\x90\x82\xa5other\x92\x01\x81\xa1x\x02\xa5chunk\xa1c").unwrap();
        assert_eq!(r.options.chunk.as_deref(), Some(&b"c"[..]));
        // a packed stream with a truncated entry: corrupt from there on
        let mut f = vec![0x92, 0xa1, b't', 0xa3, 0x92, 0x01, 0x81];
        f.truncate(7);
        let r = req(&f).unwrap();
        let Body::Entries { stream, .. } = &r.body else {
            panic!()
        };
        assert!(matches!(
            Entries::new(stream).next(),
            Some(Err(Err(msgpack::Error::Truncated)))
        ));
    }

    #[test]
    fn tags_and_chunk_ids_are_raw_bytes() {
        // ["\xff\xfe", [], {"chunk": bin "\x00\xff"}]
        let r = req(b"\x93\xa2\xff\xfe\x90\x81\xa5chunk\xc4\x02\x00\xff").unwrap();
        assert_eq!(&r.tag[..], b"\xff\xfe");
        assert_eq!(r.options.chunk.as_deref(), Some(&b"\x00\xff"[..]));
    }
}
