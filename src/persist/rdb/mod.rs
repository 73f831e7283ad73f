//! Redis's RDB format (`shared/spec/redis.md` §3).
