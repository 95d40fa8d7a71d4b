//! placeholder being replaced
mod counter;
mod encoded;
mod error;
mod fingerprint;
mod gsm7;
mod long_message;
mod segment;
mod ucs2;
#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod proptests;
pub use counter::*;
pub use encoded::*;
pub use error::*;
pub use fingerprint::*;
pub use gsm7::{decode_gsm7, is_gsm};
pub use long_message::*;
pub use segment::*;
pub use ucs2::{decode_latin1, decode_ucs2};
