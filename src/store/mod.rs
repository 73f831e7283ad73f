//! The keyspace and its values. Nothing here knows about protocols or clients.

pub mod hash;
pub mod key;
pub mod keyspace;
pub mod list;
pub mod shard;
pub mod value;

pub use hash::Hash;
pub use keyspace::{Db, Keyspace, Slot, Snapshot};
pub use list::List;
pub use value::{Entry, Str, StrRepr, Value};
