//! Replies as they are read: a reply line parsed within bounds, and the replies of a batch
//! tied to its commands by their tokens.

use super::{Batch, Reply};
use crate::error::{Error, ErrorKind, Result};

/// A reply line, read before the value it announces.
#[derive(Debug)]
pub(super) enum Head {
    Value {
        size: usize,
        flags: Vec<String>,
    },
    Status {
        code: &'static str,
        flags: Vec<String>,
    },
    /// `MN`: the end of a batch's replies.
    End,
    /// `STAT <name> <value>`: one line of the answer to `stats`.
    Stat {
        name: String,
        value: String,
    },
    /// `END`: the end of the answer to `stats`.
    StatsEnd,
    /// `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR`: the server refused a command (the
    /// connection and the server are fine).
    Refused(Error),
}

/// Read a reply line (without its line end). The error says how the line is malformed.
pub(super) fn parse_head(line: &str, max_value: usize) -> std::result::Result<Head, String> {
    let mut words = line.split(' ');
    let code = words.next().unwrap_or_default();
    let refused = |kind: ErrorKind| -> std::result::Result<Head, String> {
        Ok(Head::Refused(Error::new(
            kind,
            format!("memcached answered: {}", line.escape_debug()),
        )))
    };
    match code {
        "ERROR" => return refused(ErrorKind::Backend),
        "CLIENT_ERROR" => return refused(ErrorKind::InvalidInput),
        "SERVER_ERROR" if line.contains("too large") => return refused(ErrorKind::InvalidInput),
        "SERVER_ERROR" => return refused(ErrorKind::Backend),
        _ => {}
    }
    match code {
        "STAT" => {
            let mut stat = line.splitn(3, ' ').skip(1);
            return match (stat.next(), stat.next()) {
                (Some(name), Some(value)) if !name.is_empty() => Ok(Head::Stat {
                    name: name.to_owned(),
                    value: value.to_owned(),
                }),
                _ => Err(format!("malformed stats line {line:?}")),
            };
        }
        "END" if line == "END" => return Ok(Head::StatsEnd),
        _ => {}
    }
    let size = if code == "VA" {
        let size = words.next().unwrap_or_default();
        let parsed = size
            .parse::<usize>()
            .ok()
            .filter(|_| size.bytes().all(|b| b.is_ascii_digit()));
        match parsed {
            Some(size) if size <= max_value => Some(size),
            _ => {
                return Err(format!(
                    "a reply announces a value of {} bytes; the store's max_value_size is {max_value}",
                    size.escape_debug()
                ));
            }
        }
    } else {
        None
    };
    let flags: Vec<String> = words.map(str::to_owned).collect();
    if flags.iter().any(String::is_empty) {
        return Err(format!("malformed reply line {line:?}"));
    }
    if let Some(size) = size {
        return Ok(Head::Value { size, flags });
    }
    let code = match code {
        "MN" if flags.is_empty() => return Ok(Head::End),
        "HD" => "HD",
        "NS" => "NS",
        "EX" => "EX",
        "NF" => "NF",
        "EN" => "EN",
        "OK" => "OK",
        _ => return Err(format!("unknown reply line {line:?}")),
    };
    Ok(Head::Status { code, flags })
}

/// What the server sent next, value read.
#[derive(Debug)]
pub(super) enum Incoming {
    Reply(Reply),
    Refused(Error),
    End,
}

/// Ties the replies of a batch to its commands, in order, by their tokens.
pub(super) struct Matcher<'b> {
    batch: &'b Batch<'b>,
    /// The first command that has had no reply yet.
    next: usize,
    replies: Vec<Option<Reply>>,
    refusal: Option<Error>,
}

impl<'b> Matcher<'b> {
    pub(super) fn new(batch: &'b Batch<'b>) -> Self {
        Matcher {
            batch,
            next: 0,
            replies: std::iter::repeat_with(|| None)
                .take(batch.commands.len())
                .collect(),
            refusal: None,
        }
    }

    /// Take the next thing the server sent: `Ok(true)` at the end of the batch's replies,
    /// an error saying why it does not fit the batch.
    pub(super) fn accept(&mut self, incoming: Incoming) -> std::result::Result<bool, String> {
        let batch = self.batch;
        let commands = &batch.commands;
        match incoming {
            Incoming::End => match commands[self.next..].iter().find(|c| !c.is_quiet()) {
                Some(waiting) => Err(format!(
                    "the end of the replies came before the reply to `{}`",
                    waiting.name()
                )),
                None => Ok(true),
            },
            // An error line carries no token: it answers the next command waiting.
            Incoming::Refused(error) => {
                if self.next == commands.len() {
                    return Err(format!(
                        "an error after the replies to every command: {error}"
                    ));
                }
                self.next += 1;
                self.refusal.get_or_insert(error);
                Ok(false)
            }
            Incoming::Reply(reply) => {
                let index = match reply.flag('O') {
                    Some(token) => token
                        .parse::<u64>()
                        .ok()
                        .filter(|_| token.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|t| usize::try_from(t.wrapping_sub(batch.first_token)).ok())
                        .filter(|i| (self.next..commands.len()).contains(i))
                        .ok_or_else(|| {
                            format!(
                                "a `{}` reply carries the token {:?}, which is not that of a command waiting for a reply",
                                reply.code(),
                                token
                            )
                        })?,
                    None => self.next,
                };
                let Some(command) = commands.get(index) else {
                    return Err(format!(
                        "a `{}` reply after the replies to every command",
                        reply.code()
                    ));
                };
                if let Some(skipped) = commands[self.next..index].iter().find(|c| !c.is_quiet()) {
                    return Err(format!("the reply to `{}` is missing", skipped.name()));
                }
                if command.has_token() != reply.flag('O').is_some() {
                    return Err(format!(
                        "a `{}` reply without the token of `{}`",
                        reply.code(),
                        command.name()
                    ));
                }
                if !command.codes().contains(&reply.code()) {
                    return Err(format!(
                        "`{}` got a `{}` reply, which it cannot get",
                        command.name(),
                        reply.code()
                    ));
                }
                self.replies[index] = Some(reply);
                self.next = index + 1;
                Ok(false)
            }
        }
    }

    /// The replies by command (`None`: a quiet miss), or the first refusal.
    pub(super) fn finish(self) -> Result<Vec<Option<Reply>>> {
        match self.refusal {
            Some(refusal) => Err(refusal),
            None => Ok(self.replies),
        }
    }
}
