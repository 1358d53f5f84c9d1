//! The page, as `scripts/dashboard build` wrote it into `crates/dashboard/assets/`,
//! embedded in the binary. Vite's output names are fixed (dashboard/vite.config.js), so
//! this table names each file; a test fails when the build writes a file it does not name.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The path it is served at.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

const INDEX: &[u8] = include_bytes!("../assets/index.html");

/// Every file of the page.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        bytes: INDEX,
    },
    Asset {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        bytes: INDEX,
    },
    Asset {
        path: "/assets/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/assets/dashboard.js"),
    },
    Asset {
        path: "/assets/dashboard.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/assets/dashboard.css"),
    },
];

/// The file served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A file the build writes but the table does not name would be missing from the page.
    #[test]
    fn every_built_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut pending = vec![root.clone()];
        let mut files = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("assets/ is readable") {
                let path = entry.expect("assets/ is readable").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        assert!(!files.is_empty(), "no assets: run scripts/dashboard build");
        for file in files {
            let served = format!(
                "/{}",
                file.strip_prefix(&root)
                    .expect("under assets/")
                    .to_string_lossy()
            );
            let asset = find(&served).unwrap_or_else(|| {
                panic!(
                    "{served} is built but not embedded: name it in crates/dashboard/src/assets.rs"
                )
            });
            assert_eq!(asset.bytes, std::fs::read(&file).expect("readable"));
        }
    }

    #[test]
    fn the_page_loads_its_script_and_stylesheet_from_this_server() {
        let html = std::str::from_utf8(INDEX).expect("UTF-8");
        assert!(html.contains(r#"src="/assets/dashboard.js""#), "{html}");
        assert!(html.contains(r#"href="/assets/dashboard.css""#), "{html}");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{html}"
        );
    }
}
