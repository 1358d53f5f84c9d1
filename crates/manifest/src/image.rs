//! Component image references: `file://` paths and OCI references.

use std::path::{Component as PathPart, Path, PathBuf};

/// What a component's `image` property says, before any file system check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ImageSpec {
    /// A `file://` reference, resolved to an absolute path.
    File(PathBuf),
    /// An OCI reference, kept as written.
    Remote,
}

/// Why an `image` is neither a usable file reference nor an OCI reference.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadImage {
    pub message: String,
    pub hint: String,
}

const FILE_SCHEME: &str = "file://";

/// The scheme of components carried by the lattice itself (its JetStream component store).
pub const LATTICE_SCHEME: &str = "lattice://";

/// The name and digest of a component carried by the lattice (`lattice://NAME@sha256:…`);
/// `None` for any other reference.
pub fn lattice_image(reference: &str) -> Option<(&str, &str)> {
    let (name, digest) = reference.strip_prefix(LATTICE_SCHEME)?.rsplit_once('@')?;
    crate::lock::is_sha256_digest(digest).then_some((name, digest))
}

/// The reference of a component carried by the lattice: `lattice://NAME@DIGEST`.
pub fn lattice_image_reference(name: &str, digest: &str) -> String {
    format!("{LATTICE_SCHEME}{name}@{digest}")
}

const GENERIC_HINT: &str = "use `file://./path/to/component.wasm` (relative to the manifest's folder) for a \
     local build, or an OCI reference such as `ghcr.io/org/component:0.1.0`";

/// Classifies a component image; `base_dir` is the absolute folder of the manifest, against
/// which relative `file://` paths resolve.
pub(crate) fn classify(image: &str, base_dir: &Path) -> Result<ImageSpec, BadImage> {
    if image.trim().is_empty() {
        return Err(BadImage {
            message: "the image is empty".to_owned(),
            hint: GENERIC_HINT.to_owned(),
        });
    }
    if let Some(rest) = image.strip_prefix(FILE_SCHEME) {
        if rest.is_empty() {
            return Err(BadImage {
                message: format!("`{image}` names no file"),
                hint: GENERIC_HINT.to_owned(),
            });
        }
        return Ok(ImageSpec::File(resolve(Path::new(rest), base_dir)));
    }
    if image.starts_with(LATTICE_SCHEME) {
        return match lattice_image(image) {
            Some(_) => Ok(ImageSpec::Remote),
            None => Err(BadImage {
                message: format!(
                    "`{image}` is not a lattice component reference (`lattice://NAME@sha256:<64 hex digits>`)"
                ),
                hint: "`trellis app deploy` writes these for `file://` images; write the `file://` path instead".to_owned(),
            }),
        };
    }
    if let Some((scheme, _)) = image.split_once("://") {
        return Err(BadImage {
            message: format!(
                "`{image}` is neither a file:// path nor an OCI reference (the `{scheme}://` scheme is not supported)"
            ),
            hint: GENERIC_HINT.to_owned(),
        });
    }
    let looks_like_path = image.starts_with(['/', '.', '~']) || image.ends_with(".wasm");
    if looks_like_path {
        return Err(BadImage {
            message: format!(
                "`{image}` looks like a file path, but file paths need the file:// scheme"
            ),
            hint: format!(
                "write it as `file://{image}`; file:// paths are relative to the manifest's folder"
            ),
        });
    }
    match check_oci(image) {
        Ok(()) => Ok(ImageSpec::Remote),
        Err(why) => Err(BadImage {
            message: format!("`{image}` is not a valid OCI reference: {why}"),
            hint: GENERIC_HINT.to_owned(),
        }),
    }
}

/// Joins `path` onto `base_dir` unless it is absolute, dropping `.` parts. `..` parts are kept,
/// because removing them without the file system would be wrong across symbolic links.
fn resolve(path: &Path, base_dir: &Path) -> PathBuf {
    base_dir
        .join(path)
        .components()
        .filter(|part| !matches!(part, PathPart::CurDir))
        .collect()
}

/// A light check of the OCI reference grammar: `[registry/]repo/path[:tag][@digest]`.
///
/// It catches what people actually get wrong (spaces, upper-case repositories, empty parts)
/// without pretending to be a full implementation of the distribution spec.
fn check_oci(image: &str) -> Result<(), String> {
    if let Some(c) = image.chars().find(|c| c.is_whitespace()) {
        return Err(format!("it contains whitespace ({c:?})"));
    }
    let (name_and_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        match digest.split_once(':') {
            Some((algo, hex)) if !algo.is_empty() && !hex.is_empty() => {}
            _ => {
                return Err(format!(
                    "the digest `{digest}` is not of the form `algorithm:hex`"
                ));
            }
        }
    }
    // A `:` after the last `/` starts the tag; one before it is a registry port.
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_and_tag[last_slash..].find(':') {
        Some(i) => (
            &name_and_tag[..last_slash + i],
            Some(&name_and_tag[last_slash + i + 1..]),
        ),
        None => (name_and_tag, None),
    };
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(format!("the tag `{tag}` is not valid"));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // The first part is a registry host when it looks like one (`ghcr.io`, `localhost:5000`).
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            return Err(format!("the registry `{host}` is not a valid host name"));
        }
    }
    for part in parts {
        let valid = !part.is_empty()
            && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !valid {
            return Err(format!(
                "the repository part `{part}` must be lower-case letters, digits, `.`, `_` or `-`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PathBuf {
        PathBuf::from("/apps/hello")
    }

    #[test]
    fn file_refs_resolve_against_the_manifest_folder() {
        let cases = [
            ("file://./build/x.wasm", "/apps/hello/build/x.wasm"),
            ("file://build/x.wasm", "/apps/hello/build/x.wasm"),
            ("file://../shared/x.wasm", "/apps/hello/../shared/x.wasm"),
            ("file:///opt/x.wasm", "/opt/x.wasm"),
        ];
        for (image, want) in cases {
            assert_eq!(
                classify(image, &base()),
                Ok(ImageSpec::File(PathBuf::from(want))),
                "{image}"
            );
        }
    }

    #[test]
    fn oci_refs_are_remote() {
        for image in [
            "ghcr.io/wasmcloud/components/http-keyvalue-counter-rust:0.1.0",
            "ghcr.io/wasmcloud/http-server:0.27.0",
            "localhost:5000/hello:latest",
            "registry.example.com:443/team/app@sha256:0123abcd",
            "hello",
            "library/hello:v1.2_rc-3",
        ] {
            assert_eq!(classify(image, &base()), Ok(ImageSpec::Remote), "{image}");
        }
    }

    #[test]
    fn other_schemes_are_rejected() {
        let err = classify("https://example.com/x.wasm", &base()).expect_err("https");
        assert_eq!(
            err.message,
            "`https://example.com/x.wasm` is neither a file:// path nor an OCI reference (the `https://` scheme is not supported)"
        );
        assert!(
            err.hint.contains("file://./path/to/component.wasm"),
            "{}",
            err.hint
        );
    }

    #[test]
    fn bare_paths_get_a_file_scheme_hint() {
        let err = classify("./build/x.wasm", &base()).expect_err("bare path");
        assert_eq!(
            err.message,
            "`./build/x.wasm` looks like a file path, but file paths need the file:// scheme"
        );
        assert_eq!(
            err.hint,
            "write it as `file://./build/x.wasm`; file:// paths are relative to the manifest's folder"
        );
        assert!(classify("build/x.wasm", &base()).is_err());
    }

    #[test]
    fn malformed_oci_refs_are_rejected() {
        let cases = [
            ("", "the image is empty"),
            ("file://", "`file://` names no file"),
            (
                "ghcr.io/Org/App:1",
                "`ghcr.io/Org/App:1` is not a valid OCI reference: the repository part `Org` must be lower-case letters, digits, `.`, `_` or `-`",
            ),
            (
                "ghcr.io/org/app:",
                "`ghcr.io/org/app:` is not a valid OCI reference: the tag `` is not valid",
            ),
            (
                "ghcr.io//app",
                "`ghcr.io//app` is not a valid OCI reference: the repository part `` must be lower-case letters, digits, `.`, `_` or `-`",
            ),
            (
                "my app",
                "`my app` is not a valid OCI reference: it contains whitespace (' ')",
            ),
            (
                "ghcr.io/org/app@sha256",
                "`ghcr.io/org/app@sha256` is not a valid OCI reference: the digest `sha256` is not of the form `algorithm:hex`",
            ),
        ];
        for (image, want) in cases {
            assert_eq!(classify(image, &base()).expect_err(image).message, want);
        }
    }
}
