//! HTML from received mail, made safe to publish: ammonia, configured to keep a
//! newsletter's layout (tables, `style`, widths, colours) while removing scripts, event
//! handlers and anything that would load from elsewhere (remote images, stylesheets,
//! `url()` in styles). `cid:` images point at the archive's own copies of the attachments.

use std::collections::{HashMap, HashSet};

/// Attributes a newsletter's layout needs, allowed on any element.
const LAYOUT: &[&str] = &[
    "style",
    "class",
    "width",
    "height",
    "align",
    "valign",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "dir",
    "lang",
    "title",
    "role",
    "color",
    "face",
    "size",
    "colspan",
    "rowspan",
];

/// Sanitises `html`; `cid` maps a Content-ID to the URL of the archived attachment.
pub fn sanitise(html: &str, cid: HashMap<String, String>) -> String {
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags([
            "font", "center", "u", "s", "small", "big", "hr", "caption", "col", "colgroup",
        ])
        .add_generic_attributes(LAYOUT.iter().copied())
        .url_schemes(HashSet::from(["http", "https", "mailto", "cid"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(move |element, attribute, value| {
            match (element, attribute) {
                (_, "style") => Some(clean_style(value).into()),
                ("img", "src") => {
                    let lower = value.trim().to_ascii_lowercase();
                    if let Some(id) = lower.strip_prefix("cid:") {
                        let original = &value.trim()[4..];
                        cid.get(original)
                            .or_else(|| cid.get(id))
                            .map(|url| url.clone().into())
                    } else {
                        // A remote image would tell the sender who reads the archive.
                        None
                    }
                }
                (_, "background") => None,
                (_, "href") if value.trim().to_ascii_lowercase().starts_with("cid:") => None,
                _ => Some(value.into()),
            }
        });
    builder.clean(html).to_string()
}

/// A `style` attribute without anything that loads from elsewhere or runs code.
fn clean_style(style: &str) -> String {
    style
        .split(';')
        .filter(|declaration| {
            let d = declaration.to_ascii_lowercase();
            !(d.contains("url(")
                || d.contains("expression")
                || d.contains("behavior")
                || d.contains("-moz-binding")
                || d.contains("@import")
                || d.contains("javascript:")
                || d.contains('\\'))
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_scripts_handlers_and_remote_loads_and_keeps_layout() {
        let html = r##"<html><head><link rel="stylesheet" href="https://evil.example/x.css"><style>body{background:url(https://t.example/p)}</style><script>alert(1)</script></head>
<body onload="x()"><table width="600" bgcolor="#fff" style="color:red;background-image:url('https://t.example/p.gif')"><tr><td align="center" onclick="y()">
<img src="https://t.example/pixel.gif" alt="pixel"><img src="cid:logo@x" alt="logo">
<a href="https://union.example.org/news" onmouseover="z()">news</a> <a href="javascript:alert(1)">js</a>
<iframe src="https://evil.example"></iframe><form action="https://evil.example"><input></form>
</td></tr></table></body></html>"##;
        let cid = HashMap::from([(
            "logo@x".to_string(),
            "../attachments/abc/logo.png".to_string(),
        )]);
        let clean = sanitise(html, cid);
        let lower = clean.to_lowercase();
        for banned in [
            "<script",
            "onload",
            "onclick",
            "onmouseover",
            "<link",
            "<style",
            "url(",
            "https://t.example",
            "evil.example",
            "javascript:",
            "<iframe",
            "<form",
        ] {
            assert!(!lower.contains(banned), "{banned} in {clean}");
        }
        assert!(
            clean.contains(r##"<table width="600" bgcolor="#fff" style="color:red">"##),
            "{clean}"
        );
        assert!(
            clean.contains(r#"src="../attachments/abc/logo.png""#),
            "{clean}"
        );
        assert!(clean.contains(r#"<a href="https://union.example.org/news" rel="noopener noreferrer nofollow">news</a>"#), "{clean}");
        assert!(
            clean.contains(r#"alt="pixel""#),
            "the remote image keeps its alt text: {clean}"
        );
    }
}
