//! The user-safe error every page and server function returns: a kind that maps to an HTTP status and a
//! message fit to show. Internal details stay in the server's logs.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", content = "message")]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// Not signed in (or the API token is not valid).
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// Well-formed but not acceptable: the reason names the field.
    #[error("{0}")]
    Invalid(String),
    /// The target is busy or the request conflicts with its state; nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// Too much at once (a per-user limit, or Azure throttling); try again shortly.
    #[error("{0}")]
    TooManyRequests(String),
    /// Azure (or the emulator) did not answer and there is nothing cached to show.
    #[error("{0}")]
    Unavailable(String),
    #[error("Something went wrong on the server; it has been logged.")]
    Internal,
    /// The call itself failed between browser and server.
    #[error("{0}")]
    Transport(String),
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::NotFound(_) => 404,
            AppError::BadRequest(_) => 400,
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::Invalid(_) => 422,
            AppError::Conflict(_) => 409,
            AppError::TooManyRequests(_) => 429,
            AppError::Unavailable(_) => 503,
            AppError::Internal => 500,
            AppError::Transport(_) => 502,
        }
    }

    /// The error code in the JSON envelope, ARM style.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound(_) => "NotFound",
            AppError::BadRequest(_) => "BadRequest",
            AppError::Unauthorized(_) => "Unauthorized",
            AppError::Forbidden(_) => "Forbidden",
            AppError::Invalid(_) => "ValidationFailed",
            AppError::Conflict(_) => "Conflict",
            AppError::TooManyRequests(_) => "TooManyRequests",
            AppError::Unavailable(_) => "ServiceUnavailable",
            AppError::Internal => "InternalError",
            AppError::Transport(_) => "TransportError",
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}
