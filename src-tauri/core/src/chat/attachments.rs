//! Attachments: files a user adds to a message, kept once per content hash
//! under the data directory and referenced by messages. Images go to the
//! model as vision input; text, Markdown, code and PDF files as their text.

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::store::{self, Attachment, Message};
use super::{new_id, now_ms, Chat, ChatError};

/// Largest attachment accepted.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Most characters of one file's text put in a prompt.
const MAX_TEXT_CHARS: usize = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error("The file is empty.")]
    Empty,
    #[error("The file is larger than the {} MB attachment limit.", MAX_BYTES / 1024 / 1024)]
    TooLarge,
    #[error(
        "`{0}` files cannot be attached: attach images (PNG, JPEG, GIF, WebP), PDF, or text files."
    )]
    Unsupported(String),
}

/// How a file reaches the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image,
    Pdf,
    Text,
}

fn kind(mime: &str, name: &str) -> Option<Kind> {
    let mime = mime.split(';').next().unwrap_or_default().trim();
    let ext = name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match mime {
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" => Some(Kind::Image),
        "application/pdf" => Some(Kind::Pdf),
        m if m.starts_with("text/") => Some(Kind::Text),
        "application/json" | "application/xml" | "application/x-yaml" | "application/toml" => {
            Some(Kind::Text)
        }
        _ => match ext.as_str() {
            "png" | "jpg" | "jpeg" | "gif" | "webp" => Some(Kind::Image),
            "pdf" => Some(Kind::Pdf),
            "txt" | "md" | "markdown" | "csv" | "json" | "toml" | "yaml" | "yml" | "xml"
            | "html" | "htm" | "rs" | "py" | "js" | "ts" | "tsx" | "go" | "c" | "h" | "cpp"
            | "java" | "sh" | "sql" | "log" => Some(Kind::Text),
            _ => None,
        },
    }
}

/// The MIME type to store for a file of `kind`.
fn stored_mime(mime: &str, name: &str, kind: Kind) -> String {
    let mime = mime.split(';').next().unwrap_or_default().trim();
    if !mime.is_empty() && mime != "application/octet-stream" {
        return mime.to_string();
    }
    let ext = name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match (kind, ext.as_str()) {
        (Kind::Image, "png") => "image/png",
        (Kind::Image, "gif") => "image/gif",
        (Kind::Image, "webp") => "image/webp",
        (Kind::Image, _) => "image/jpeg",
        (Kind::Pdf, _) => "application/pdf",
        (Kind::Text, "md" | "markdown") => "text/markdown",
        (Kind::Text, _) => "text/plain",
    }
    .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Chat {
    fn file(&self, sha256: &str) -> PathBuf {
        self.files.join(sha256)
    }

    /// Keeps an uploaded file (once per content) and records it.
    pub async fn attach(
        &self,
        name: &str,
        mime: &str,
        bytes: bytes::Bytes,
    ) -> Result<Attachment, ChatError> {
        if bytes.is_empty() {
            return Err(ChatError::Invalid(AttachmentError::Empty.to_string()));
        }
        if bytes.len() > MAX_BYTES {
            return Err(ChatError::Invalid(AttachmentError::TooLarge.to_string()));
        }
        let name = name.trim();
        let name = if name.is_empty() { "attachment" } else { name };
        let kind = kind(mime, name).ok_or_else(|| {
            ChatError::Invalid(AttachmentError::Unsupported(mime.to_string()).to_string())
        })?;
        let attachment = Attachment {
            id: new_id("att"),
            name: name.chars().take(200).collect(),
            mime: stored_mime(mime, name, kind),
            size: bytes.len() as i64,
            sha256: hex(&Sha256::digest(&bytes)),
        };
        let path = self.file(&attachment.sha256);
        let dir = self.files.clone();
        let a = attachment.clone();
        self.db(move |conn| {
            if !path.exists() {
                std::fs::create_dir_all(&dir).map_err(|e| ChatError::Internal(e.to_string()))?;
                let tmp = path.with_extension("part");
                std::fs::write(&tmp, &bytes).map_err(|e| ChatError::Internal(e.to_string()))?;
                std::fs::rename(&tmp, &path).map_err(|e| ChatError::Internal(e.to_string()))?;
            }
            store::add_attachment(conn, &a, now_ms())?;
            Ok(())
        })
        .await?;
        Ok(attachment)
    }

    /// Removes the files of attachments no message uses any more.
    pub(super) fn forget_files(&self, hashes: &[String]) {
        for h in hashes {
            let _ = std::fs::remove_file(self.file(h));
        }
    }

    /// A user message's content as the model gets it: its text, with each
    /// attachment as an image part or as text.
    pub(super) async fn user_content(&self, m: &Message) -> Result<Value, ChatError> {
        if m.attachments.is_empty() {
            return Ok(json!(m.content));
        }
        let mut parts = Vec::new();
        let mut texts = Vec::new();
        for a in &m.attachments {
            let path = self.file(&a.sha256);
            let bytes = tokio::fs::read(&path).await.map_err(|e| {
                ChatError::Invalid(format!(
                    "Attachment `{}` is missing from the data directory ({e}).",
                    a.name
                ))
            })?;
            match kind(&a.mime, &a.name) {
                Some(Kind::Image) => {
                    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    parts.push(json!({"type": "image_url", "image_url": {"url": format!("data:{};base64,{data}", a.mime)}}));
                }
                Some(Kind::Pdf) => {
                    let text = tokio::task::spawn_blocking(move || {
                        pdf_extract::extract_text_from_mem(&bytes)
                    })
                    .await
                    .map_err(|e| ChatError::Internal(e.to_string()))?
                    .map_err(|e| {
                        ChatError::Invalid(format!("Could not read the text of `{}`: {e}", a.name))
                    })?;
                    texts.push(file_block(&a.name, &text));
                }
                Some(Kind::Text) | None => {
                    texts.push(file_block(&a.name, &String::from_utf8_lossy(&bytes)));
                }
            }
        }
        let mut text = m.content.clone();
        for t in texts {
            text.push_str("\n\n");
            text.push_str(&t);
        }
        let mut content = vec![json!({"type": "text", "text": text})];
        content.extend(parts);
        Ok(Value::Array(content))
    }
}

/// A file's text as a fenced block headed by its name.
fn file_block(name: &str, text: &str) -> String {
    let clipped: String = text.chars().take(MAX_TEXT_CHARS).collect();
    let more = if text.chars().count() > MAX_TEXT_CHARS {
        "\n[… the rest of the file is left out]"
    } else {
        ""
    };
    let fence = if clipped.contains("```") {
        "````"
    } else {
        "```"
    };
    format!("Attached file `{name}`:\n{fence}\n{clipped}{more}\n{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_by_type_then_extension() {
        assert_eq!(kind("image/png", "x"), Some(Kind::Image));
        assert_eq!(
            kind("application/octet-stream", "notes.md"),
            Some(Kind::Text)
        );
        assert_eq!(kind("", "paper.PDF"), Some(Kind::Pdf));
        assert_eq!(kind("application/zip", "a.zip"), None);
        assert_eq!(stored_mime("", "a.jpg", Kind::Image), "image/jpeg");
    }

    #[test]
    fn a_file_block_keeps_fences_in_the_text_intact() {
        let b = file_block("a.md", "```rust\nfn main() {}\n```");
        assert!(b.starts_with("Attached file `a.md`:\n````\n"), "{b}");
        assert!(b.ends_with("\n````"));
    }
}
