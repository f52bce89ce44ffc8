//! The subcommands.

pub mod generate;
pub mod modules;
pub mod verify;
