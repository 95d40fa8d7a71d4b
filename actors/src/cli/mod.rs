//! Command-line subcommands besides running the service: `send` (smoke test), `admin`
//! (calls the admin API) and `segments` (the segment counter filter).

pub mod admin;
pub mod send;
