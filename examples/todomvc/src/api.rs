//! The JSON API under `/api/todos`.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /api/todos` | `200`, every todo: `[{"id": 1, "title": "…", "completed": false}, …]` in the order added |
//! | `POST /api/todos` `{"title": "…"}` | `201`, the new todo (`location: /api/todos/{id}`) |
//! | `PATCH /api/todos` `{"completed": true}` | `200`, every todo, all marked (toggle all) |
//! | `DELETE /api/todos?completed=true` | `200`, the todos left after deleting the completed ones |
//! | `GET /api/todos/{id}` | `200`, that todo |
//! | `PATCH /api/todos/{id}` `{"title": "…"}`, `{"completed": true}` or both | `200`, the todo as stored |
//! | `DELETE /api/todos/{id}` | `204` |
//!
//! Every failure answers `{"error": "…"}` with a 4xx status when the request is at fault:
//! `400` for a body that is not JSON or not the expected fields (unknown fields are refused,
//! so a typo is not silently ignored), an empty or too long title; `404` for an unknown id;
//! `405` for a method a path does not take; `409` when adding past the most todos kept (the
//! config key `max_todos`, [`store::DEFAULT_MAX_TODOS`] when unset); `413` for a
//! body over [`MAX_BODY_BYTES`]; `415` for a body not sent as `application/json`, which also
//! keeps other sites' plain HTML forms from posting here. A key-value failure answers `503`
//! (the backend failed, try again) or `500` (the deployment is wrong), naming the failure.
//!
//! Titles are trimmed; what is left must be 1 to [`MAX_TITLE_CHARS`] characters with no
//! control characters (a todo is one line).

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::http::{Reply, Request};
use crate::store::{self, Todos};
use wasi::http::types::Method;

/// Where the API lives.
pub const PREFIX: &str = "/api/todos";
/// The largest request body read. A title and a flag need far less; the rest is headroom for
/// clients that pretty-print.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The longest title, in characters after trimming.
pub const MAX_TITLE_CHARS: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTodo {
    title: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Changes {
    title: Option<String>,
    completed: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeAll {
    completed: bool,
}

/// `/api/todos`: the whole list.
pub fn collection(request: Request) -> Reply {
    const ALLOW: &str = "GET, POST, PATCH, DELETE";
    match request.method {
        Method::Get | Method::Head => with_store(|todos| Ok(Reply::json(200, &todos.list()?))),
        Method::Post => {
            let new: NewTodo = match json_body(request) {
                Ok(new) => new,
                Err(reply) => return reply,
            };
            let title = match valid_title(&new.title) {
                Ok(title) => title,
                Err(reply) => return reply,
            };
            with_store(|todos| {
                // Counted before adding, so requests adding at the same time may together go
                // a little past the limit; it bounds the list, it is not a quota.
                if todos.ids()?.len() >= todos.max_todos {
                    return Ok(Reply::error(
                        409,
                        format!(
                            "there are already {} todos, the most this app keeps; delete some \
                             first",
                            todos.max_todos
                        ),
                    ));
                }
                let todo = todos.add(&title)?;
                let location = format!("{PREFIX}/{}", todo.id);
                Ok(Reply::json(201, &todo).with_header("location", &location))
            })
        }
        Method::Patch => {
            let change: ChangeAll = match json_body(request) {
                Ok(change) => change,
                Err(reply) => return reply,
            };
            with_store(|todos| {
                Ok(Reply::json(
                    200,
                    &todos.set_all_completed(change.completed)?,
                ))
            })
        }
        Method::Delete => {
            if request.query.as_deref() != Some("completed=true") {
                return Reply::error(
                    400,
                    format!(
                        "DELETE {PREFIX} deletes the completed todos only, and says so: \
                         DELETE {PREFIX}?completed=true"
                    ),
                );
            }
            with_store(|todos| Ok(Reply::json(200, &todos.clear_completed()?)))
        }
        _ => Reply::method_not_allowed(&request, ALLOW),
    }
}

/// `/api/todos/{id}`: one todo.
pub fn item(request: Request, id: &str) -> Reply {
    const ALLOW: &str = "GET, PATCH, DELETE";
    let not_found = || Reply::error(404, format!("there is no todo with id {id:?}"));
    // Ids are what `atomics.increment` handed out: decimal digits only (`u64::from_str` would
    // also take `+7`, a second name for 7).
    let id = match id
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| id.parse::<u64>())
    {
        Some(Ok(id)) => id,
        _ => return not_found(),
    };
    match request.method {
        Method::Get | Method::Head => with_store(|todos| {
            Ok(match todos.get(id)? {
                Some(todo) => Reply::json(200, &todo),
                None => not_found(),
            })
        }),
        Method::Patch => {
            let changes: Changes = match json_body(request) {
                Ok(changes) => changes,
                Err(reply) => return reply,
            };
            if changes.title.is_none() && changes.completed.is_none() {
                return Reply::error(
                    400,
                    "nothing to change: give \"title\", \"completed\" or both",
                );
            }
            let title = match changes.title.as_deref().map(valid_title).transpose() {
                Ok(title) => title,
                Err(reply) => return reply,
            };
            with_store(|todos| {
                Ok(
                    match todos.update(id, title.as_deref(), changes.completed)? {
                        Some(todo) => Reply::json(200, &todo),
                        None => not_found(),
                    },
                )
            })
        }
        Method::Delete => with_store(|todos| {
            Ok(if todos.delete(id)? {
                Reply::no_content()
            } else {
                not_found()
            })
        }),
        _ => Reply::method_not_allowed(&request, ALLOW),
    }
}

/// Opens the store and runs `f` on it, turning a store failure into its reply.
fn with_store(f: impl FnOnce(&Todos) -> Result<Reply, store::Error>) -> Reply {
    match Todos::open().and_then(|todos| f(&todos)) {
        Ok(reply) => reply,
        Err(e) => Reply::error(e.status(), e.to_string()),
    }
}

/// The body as `T`, or the reply that says why it is not one.
fn json_body<T: DeserializeOwned>(request: Request) -> Result<T, Reply> {
    let content_type = request.header("content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        let sent = if media_type.is_empty() {
            "no content-type".to_owned()
        } else {
            format!("content-type {media_type}")
        };
        return Err(Reply::error(
            415,
            format!(
                "send the body as JSON with content-type: application/json (this request had \
                 {sent}); with curl, use --json"
            ),
        ));
    }
    let body = request.read_body(MAX_BODY_BYTES)?;
    serde_json::from_slice(&body).map_err(|e| {
        let what = if e.is_data() {
            "the body is not what this request takes"
        } else {
            "the body is not valid JSON"
        };
        Reply::error(400, format!("{what}: {e}"))
    })
}

/// The title trimmed, if it is one a todo may have.
fn valid_title(title: &str) -> Result<String, Reply> {
    let title = title.trim();
    if title.is_empty() {
        return Err(Reply::error(400, "the title is empty"));
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        return Err(Reply::error(
            400,
            format!("the title is {chars} characters long; the most is {MAX_TITLE_CHARS}"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(Reply::error(
            400,
            "the title has a control character (such as a line break); a todo is one line",
        ));
    }
    Ok(title.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(valid_title("  milk \t").ok().as_deref(), Some("milk"));
        assert!(valid_title("   ").is_err());
        assert!(valid_title("a\nb").is_err());
        assert!(valid_title(&"é".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(valid_title(&"é".repeat(MAX_TITLE_CHARS + 1)).is_err());
    }
}
