//! The UI router without sockets: each embedded file with its content type
//! and validator, revalidation, and unknown names.

use super::{ASSETS, router};
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn get(
    path: &str,
    if_none_match: Option<&str>,
) -> Result<http::Response<Body>, Box<dyn std::error::Error>> {
    let mut request = Request::get(path);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    Ok(router().oneshot(request.body(Body::empty())?).await?)
}

fn header_of(response: &http::Response<Body>, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn root_serves_the_page_shell() -> TestResult {
    let response = get("/", None).await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
    let body = response.into_body().collect().await?.to_bytes();
    let html = std::str::from_utf8(&body)?;
    assert!(
        html.contains(r#"<script type="module" src="/ui/app.js">"#),
        "{html}"
    );
    Ok(())
}

#[tokio::test]
async fn every_asset_has_its_type_and_a_distinct_validator() -> TestResult {
    for asset in ASSETS {
        let response = get(&format!("/ui/{}", asset.name), None).await?;
        assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
        let expected = match asset.name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("html") => "text/html; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected extension {other:?}"),
        };
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            expected,
            "{}",
            asset.name
        );
        let etag = header_of(&response, header::ETAG).to_owned();
        assert!(
            etag.len() == 18 && etag.starts_with('"') && etag.ends_with('"'),
            "{etag}"
        );
        let body = response.into_body().collect().await?.to_bytes();
        assert_eq!(body, asset.body.as_bytes(), "{}", asset.name);
    }
    let mut tags: Vec<&str> = ASSETS.iter().map(|a| a.etag).collect();
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(tags.len(), ASSETS.len(), "each file its own validator");
    Ok(())
}

#[tokio::test]
async fn a_matching_validator_gets_304_without_a_body() -> TestResult {
    let first = get("/ui/app.js", None).await?;
    let etag = header_of(&first, header::ETAG).to_owned();
    let again = get("/ui/app.js", Some(&format!("\"0000000000000000\", {etag}"))).await?;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&again, header::ETAG), etag);
    assert!(again.into_body().collect().await?.to_bytes().is_empty());
    let stale = get("/ui/app.js", Some("\"0000000000000000\"")).await?;
    assert_eq!(stale.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn unknown_files_are_404() -> TestResult {
    for path in ["/ui/nope.js", "/ui/..%2Fmod.rs", "/ui/", "/index.html"] {
        let response = get(path, None).await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    Ok(())
}

#[test]
fn every_file_in_the_assets_folder_is_served() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui/assets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("assets folder")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    on_disk.sort();
    let mut served: Vec<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
    served.sort();
    assert_eq!(
        on_disk,
        served,
        "ASSETS lists exactly the files in {}",
        dir.display()
    );
}
