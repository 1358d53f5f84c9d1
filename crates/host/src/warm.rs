//! The warm-instance setting of a component this host starts: the manifest's
//! `trellis.dev/warm.<component>` or `trellis.dev/warm` annotation
//! ([`trellis_manifest::warm`]), or, for a component started by `component.scale`, the
//! `trellis.dev/warm` annotation the reconciler put on the command; completed with the host's
//! `--instance-*` defaults.

use trellis_manifest::Application;
use trellis_manifest::warm::{HINT, WarmSetting, lookup};
use trellis_runtime::Reuse;

/// `Some` when `component` of `app` is opted into warm instances; an error naming the
/// annotation when its value cannot be read (a manifest's are checked when it is loaded; a
/// `component.scale` from another client is not).
pub(crate) fn setting(
    app: &Application,
    component: &str,
    defaults: &Reuse,
) -> Result<Option<Reuse>, String> {
    let Some((key, value)) = lookup(&app.annotations, component) else {
        return Ok(None);
    };
    let setting = WarmSetting::parse(value).map_err(|e| {
        format!("annotation `{key}: {value}` is not a warm-instance setting: {e}; {HINT}")
    })?;
    Ok(setting.map(|s| Reuse {
        max_requests: s.max_requests.unwrap_or(defaults.max_requests),
        idle_timeout: s.idle.unwrap_or(defaults.idle_timeout),
        ..*defaults
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn app(annotations: &[(&str, &str)]) -> Application {
        let mut app = trellis_manifest::parse(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: a\n  annotations: {}\nspec:\n  components: []\n",
            std::path::Path::new("app.yaml"),
        )
        .expect("manifest");
        app.annotations = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        app
    }

    #[test]
    fn the_component_key_wins_and_settings_complete_the_defaults() {
        let defaults = Reuse::default();
        assert_eq!(setting(&app(&[]), "hello", &defaults), Ok(None));
        let a = app(&[
            ("trellis.dev/warm", "true"),
            ("trellis.dev/warm.hello", "false"),
            ("trellis.dev/warm.api", "max-requests=5, idle=250ms"),
        ]);
        assert_eq!(setting(&a, "hello", &defaults), Ok(None));
        assert_eq!(setting(&a, "other", &defaults), Ok(Some(defaults)));
        assert_eq!(
            setting(&a, "api", &defaults),
            Ok(Some(Reuse {
                max_requests: 5,
                idle_timeout: Duration::from_millis(250),
                ..defaults
            }))
        );
    }

    #[test]
    fn a_bad_value_names_its_annotation_and_what_to_write() {
        let e = setting(
            &app(&[("trellis.dev/warm", "lots")]),
            "x",
            &Reuse::default(),
        )
        .expect_err("refused");
        assert!(e.contains("trellis.dev/warm: lots"), "{e}");
        assert!(e.contains("max-requests=500"), "{e}");
    }
}
