//! The local stack: the Verint + Amazon Connect simulator ([`sim`]) and the generator of
//! realistic CTR days and benchmark corpora ([`generate`]).

pub mod generate;
pub mod sim;
