//! Helpers shared by the protocol's integration tests.

use roomready_protocol::{Command, CommandResponse, Event, Message, State, Status};

/// What the decoder of the message `name` (a [`Message::NAME`]) says about `payload`.
pub fn decode(name: &str, payload: &[u8]) -> Result<(), String> {
    fn run<M: Message>(payload: &[u8]) -> Result<(), String> {
        M::decode(payload).map(drop).map_err(|e| e.to_string())
    }
    match name {
        n if n == Status::NAME => run::<Status>(payload),
        n if n == State::NAME => run::<State>(payload),
        n if n == Event::NAME => run::<Event>(payload),
        n if n == Command::NAME => run::<Command>(payload),
        n if n == CommandResponse::NAME => run::<CommandResponse>(payload),
        other => panic!("no decoder for {other}"),
    }
}
