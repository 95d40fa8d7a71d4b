//! Protocol: SMPP 3.4 as the service speaks it, sans-IO.
//!
//! - [`pdu`]: framing and PDUs over `smpp34` (lengths checked before anything is
//!   reserved; malformed bodies answered, not fatal);
//! - [`session`]: one session as a state machine (bind handshake, enquire_link, sequence
//!   numbers, the in-flight window, the inbound window): `handle_*` in, `poll_*` out;
//! - [`window`]: in-flight submits by sequence number, deadlines, adaptive size, and the
//!   sequence numbers themselves;
//! - [`taxonomy`]: what an ESME status or a failure means for the message and the bind.

pub mod pdu;
pub mod session;
pub mod taxonomy;
pub mod window;
