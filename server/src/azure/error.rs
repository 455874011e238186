//! Typed errors from Azure calls. Messages are safe to show: no tokens, no bodies beyond Azure's own message.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// Azure answered with an error status and (usually) its error envelope.
    #[error("{service} answered {status} {code}: {message}")]
    Api {
        service: String,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused, timed out, reset.
    #[error("could not reach {service}: {reason}")]
    Transport { service: String, reason: String },
    /// An answer we could not read.
    #[error("unexpected answer from {service}: {reason}")]
    Decode { service: String, reason: String },
    #[error("could not get an Azure token: {0}")]
    Credential(String),
}

impl AzureError {
    pub fn status(&self) -> Option<u16> {
        match self {
            AzureError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Worth another try for a read: throttled, a server-side fault, or no answer.
    pub fn is_transient(&self) -> bool {
        match self {
            AzureError::Api { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            AzureError::Transport { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, AzureError>;
