//! The subcommands.

pub mod admin_token;
pub mod bench;
pub mod demo;
pub mod generate;
pub mod keys;
pub mod limits;
pub mod modules;
pub mod redis_auth;
pub mod reply_key;
pub mod seconds;
pub mod serve;
pub mod shutdown;
pub mod stats;
pub mod submit;
pub mod trust;
pub mod verify;
