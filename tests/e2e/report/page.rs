//! The page people forward, end to end: the trend read from the previous
//! reports in the bucket (one listing page, bounded reads, an unreadable
//! one skipped and named), and the stored page rendered by headless
//! Chromium as a person would open it (phone-sized).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{nightly_now, Fleet};

const BUCKET: &str = "fleet-reports";

/// A previous night's full report as the reporter stores it (totals only matter).
fn stored(compliant: u64) -> String {
    json!({
        "type": "fleetops.compliance-report", "version": 1, "generated_at": "x", "complete": true,
        "totals": {"running": 8, "compliant": compliant, "noncompliant": 8 - compliant,
                   "missing_critical": 1, "unmanaged": 1, "stale": 1, "stopped_stale": 1},
        "groups": []
    })
    .to_string()
}

fn night(days_back: i64) -> String {
    (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_back))
        .strftime("%Y-%m-%d")
        .to_string()
}

/// Chromium (`FLEETOPS_CHROMIUM`, default `chromium` on PATH); `make test`
/// installs Debian's package where it is missing (see the Makefile).
fn chromium() -> PathBuf {
    std::env::var_os("FLEETOPS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromium"))
}

/// Runs headless Chromium with `args` on `page`; its stdout. Every flag that
/// keeps it off the network and out of the user's profile is set.
pub(crate) fn run_chromium(page: &Path, args: &[&str]) -> String {
    let profile = std::env::temp_dir().join(format!(
        "fleetops-chromium-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&profile).expect("profile dir");
    let out_path = profile.join("stdout");
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(page)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "starting {} (apt-get install -y chromium, or set FLEETOPS_CHROMIUM): {e}",
                chromium().display()
            )
        });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("chromium status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "chromium failed: {status}");
    stdout
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread")]
async fn given_29_readable_previous_reports_and_one_unreadable_then_the_page_trends_30_nights_and_names_the_skipped_one(
) {
    let fleet = Fleet::new().await;
    let s = fleet.seed().await;
    let (topic_arn, _queue) = fleet.topic_with_queue().await;
    fleet
        .s3
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    let put = |key: String, body: String| {
        let s3 = fleet.s3.clone();
        async move {
            s3.put_object()
                .bucket(BUCKET)
                .key(key)
                .body(body.into_bytes().into())
                .send()
                .await
                .expect("put");
        }
    };
    // Nights 1..=30 back; night 7 is not JSON. Night 45 is outside the window
    // and the HTML pages are never read.
    for back in 1..=30 {
        let body = if back == 7 {
            "<html>oops".to_string()
        } else {
            stored(back as u64 % 9)
        };
        put(
            format!("fleetops/reports/{}/compliance-020000Z.json", night(back)),
            body,
        )
        .await;
        put(
            format!("fleetops/reports/{}/compliance-020000Z.html", night(back)),
            "<html>".into(),
        )
        .await;
    }
    put(
        format!("fleetops/reports/{}/compliance-020000Z.json", night(45)),
        stored(0),
    )
    .await;
    let unreadable = format!("fleetops/reports/{}/compliance-020000Z.json", night(7));

    let function =
        fleet.start_function(&[("REPORT_TOPIC_ARN", &topic_arn), ("REPORT_BUCKET", BUCKET)]);
    fleet.emulator.reset_calls();
    let output = function.invoke(&nightly_now()).output().clone();
    let calls = fleet.emulator.calls();
    assert_eq!(output["trend_nights"], json!(29), "{output}");
    let skipped = output["trend_skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{output}");
    assert!(
        skipped[0]
            .as_str()
            .is_some_and(|k| k.starts_with(&unreadable)),
        "{skipped:?}"
    );
    assert_eq!(
        calls.get("s3:ListObjectsV2").copied().unwrap_or_default(),
        1,
        "one listing page: {calls:?}"
    );
    assert_eq!(
        calls.get("s3:GetObject").copied().unwrap_or_default(),
        30,
        "bounded reads: {calls:?}"
    );

    let html_uri = output["report_objects"]
        .as_array()
        .and_then(|o| {
            o.iter()
                .filter_map(Value::as_str)
                .find(|u| u.ends_with(".html"))
        })
        .expect("html object")
        .to_string();
    let key = html_uri
        .trim_start_matches(&format!("s3://{BUCKET}/"))
        .to_string();
    let object = fleet
        .s3
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("get page");
    let html =
        String::from_utf8(object.body.collect().await.expect("body").to_vec()).expect("utf-8");
    assert_eq!(
        html.matches("<rect class=\"night").count(),
        30,
        "29 nights and tonight"
    );
    assert!(html.contains(&unreadable), "the skipped report is named");
    assert!(html.contains("could not be read"));
    assert!(
        html.contains(&format!("instanceId={}", s.web_critical)),
        "console link"
    );

    // As a person opens it: a phone-sized headless Chromium.
    let dir = std::env::temp_dir().join(format!("fleetops-page-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let page = dir.join("report.html");
    std::fs::write(&page, &html).expect("write page");
    let dom = run_chromium(&page, &["--dump-dom"]);
    assert!(
        dom.contains("<section id=\"headline\""),
        "rendered DOM has the headline: {dom}"
    );
    assert!(dom.contains("of running instances compliant"), "{dom}");
    assert_eq!(dom.matches("class=\"group-bar\"").count(), 3, "{dom}");
    assert_eq!(dom.matches("<rect class=\"night").count(), 30);
    let shot = dir.join("report.png");
    run_chromium(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=390,844",
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(png_size(&png), (390, 844));
    // A blank page of that size is under 3 KB.
    assert!(
        png.len() > 20_000,
        "the screenshot looks blank: {} bytes",
        png.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
