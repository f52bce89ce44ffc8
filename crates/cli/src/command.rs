//! The subcommands.

pub mod bench;
pub mod demo;
pub mod generate;
pub mod keys;
pub mod limits;
pub mod modules;
pub mod seconds;
pub mod serve;
pub mod shutdown;
pub mod submit;
pub mod trust;
pub mod verify;
