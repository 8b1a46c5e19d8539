//! netpath-pkt: a typed AST, parser and printer for packetdrill scripts.
//!
//! [`parse`] turns script text into a [`Script`]; its `Display` prints text
//! that parses back to the same AST (up to line numbers, see
//! [`Script::eq_ignoring_lines`]). Errors carry a line and column and the
//! parser never panics, whatever the input.
//!
//! ```
//! let s = netpath_pkt::parse("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n").unwrap();
//! assert_eq!(s.events.len(), 1);
//! assert_eq!(s.to_string(), "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
pub mod lexer;
pub mod netpath_host;
pub mod parser;
mod print;
mod python;
pub mod run;
pub mod suite;
pub mod vfs;

pub use ast::*;
pub use lexer::ParseError;
pub use parser::parse;
