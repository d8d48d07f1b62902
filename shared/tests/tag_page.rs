//! `tag_page` against an independent reference: the SDK's own
//! `DescribeTags` deserializer, on the same bytes (pages generated with
//! EC2's layout, escapes and all, plus the variations XML allows); and the
//! pages it must decline, so the SDK reads them instead.

use aws_sdk_ec2::operation::describe_tags::DescribeTagsOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use fleetops::scheduler::read::{read_fleet, DescribeError, FleetRead};
use fleetops::scheduler::tag_page::{parse_tag_page, TagEntry, TagPage};
use proptest::prelude::*;

/// What the SDK makes of `body` as a 200 answer to `DescribeTags`, in the
/// tick's terms; `None` if it fails.
fn sdk_reads(runtime: &tokio::runtime::Runtime, body: &str) -> Option<TagPage> {
    let answer = mock!(aws_sdk_ec2::Client::describe_tags)
        .sequence()
        .http_status(200, Some(body.to_string()))
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&answer]);
    let output: DescribeTagsOutput = runtime.block_on(ec2.describe_tags().send()).ok()?;
    let tags = output
        .tags
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.resource_id?, t.key?, t.value.unwrap_or_default())))
        .collect();
    Some(TagPage {
        tags,
        next_token: output.next_token.filter(|t| !t.is_empty()),
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
}

/// How one character is written: as it is (where XML allows), as an entity,
/// or as a character reference.
#[derive(Clone, Copy, Debug)]
enum Spelling {
    Plain,
    Entity,
    Decimal,
    Hex,
}

fn escape(text: &str, spellings: &[Spelling]) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        let spelling = spellings.get(i % spellings.len().max(1)).copied();
        let entity = match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '"' => Some("&quot;"),
            '\'' => Some("&apos;"),
            _ => None,
        };
        match (spelling.unwrap_or(Spelling::Plain), entity) {
            (Spelling::Decimal, _) => out.push_str(&format!("&#{};", c as u32)),
            (Spelling::Hex, _) => out.push_str(&format!("&#x{:X};", c as u32)),
            (_, Some(e))
                if matches!(c, '&' | '<') || matches!(spelling, Some(Spelling::Entity)) =>
            {
                out.push_str(e)
            }
            _ => out.push(c),
        }
    }
    out
}

fn spellings() -> impl Strategy<Value = Vec<Spelling>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(Spelling::Plain),
            1 => Just(Spelling::Entity),
            1 => Just(Spelling::Decimal),
            1 => Just(Spelling::Hex),
        ],
        1..6,
    )
}

/// Tag keys and values as users type them: markup characters, quotes,
/// white space of every kind, accents, other scripts, emoji; or nothing.
fn tag_text() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-zA-Z0-9 :/._=+@&<>\"'\t\r\n\u{e9}\u{65e5}\u{1F600}-]{0,12}")
        .expect("a valid regex")
}

/// How a value is given: `<value>…</value>`, `<value/>`, `<value></value>`,
/// or not at all.
#[derive(Clone, Debug)]
enum ValueForm {
    Text,
    SelfClosed,
    EmptyPair,
    Missing,
}

#[derive(Clone, Debug)]
struct Item {
    id: String,
    key: String,
    value: String,
    value_form: ValueForm,
    resource_type: bool,
    /// An element the page does not know, holding a `key` of its own.
    unknown: bool,
}

prop_compose! {
    fn item()(
        id in "i-[0-9a-f]{17}",
        key in tag_text(),
        value in tag_text(),
        value_form in prop_oneof![
            6 => Just(ValueForm::Text),
            1 => Just(ValueForm::SelfClosed),
            1 => Just(ValueForm::EmptyPair),
            1 => Just(ValueForm::Missing),
        ],
        resource_type in any::<bool>(),
        unknown in prop::bool::weighted(0.2),
    ) -> Item {
        Item { id, key, value, value_form, resource_type, unknown }
    }
}

#[derive(Clone, Debug)]
struct Page {
    items: Vec<Item>,
    next_token: Option<String>,
    declaration: bool,
    namespace: bool,
    request_id: bool,
    comment: bool,
    indent: usize,
    spellings: Vec<Spelling>,
}

prop_compose! {
    fn page()(
        items in prop::collection::vec(item(), 0..8),
        next_token in prop::option::of("[A-Za-z0-9+/=]{0,20}"),
        declaration in any::<bool>(),
        namespace in any::<bool>(),
        request_id in any::<bool>(),
        comment in prop::bool::weighted(0.2),
        indent in prop_oneof![Just(0usize), Just(2), Just(4)],
        spellings in spellings(),
    ) -> Page {
        Page { items, next_token, declaration, namespace, request_id, comment, indent, spellings }
    }
}

/// The page as EC2 would write it (indented as EC2 does, or not at all).
fn render(page: &Page) -> String {
    let e = |text: &str| escape(text, &page.spellings);
    let pad = |depth: usize| {
        if page.indent == 0 {
            String::new()
        } else {
            format!("\n{}", " ".repeat(page.indent * depth))
        }
    };
    let mut xml = String::new();
    if page.declaration {
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }
    xml.push_str("<DescribeTagsResponse");
    if page.namespace {
        xml.push_str(" xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"");
    }
    xml.push('>');
    if page.request_id {
        xml.push_str(&format!(
            "{}<requestId>7a62c49f-347e-4fc4</requestId>",
            pad(1)
        ));
    }
    if let Some(token) = &page.next_token {
        xml.push_str(&format!("{}<nextToken>{}</nextToken>", pad(1), e(token)));
    }
    xml.push_str(&format!("{}<tagSet>", pad(1)));
    for (i, item) in page.items.iter().enumerate() {
        if page.comment && i == 1 {
            xml.push_str(&format!("{}<!-- a comment, <item> -->", pad(2)));
        }
        xml.push_str(&format!("{}<item>", pad(2)));
        xml.push_str(&format!("{}<resourceId>{}</resourceId>", pad(3), item.id));
        if item.resource_type {
            xml.push_str(&format!("{}<resourceType>instance</resourceType>", pad(3)));
        }
        if item.unknown {
            xml.push_str(&format!(
                "{}<extra a=\"x > y\"><key>not this</key><empty/></extra>",
                pad(3)
            ));
        }
        xml.push_str(&format!("{}<key>{}</key>", pad(3), e(&item.key)));
        match item.value_form {
            ValueForm::Text => {
                xml.push_str(&format!("{}<value>{}</value>", pad(3), e(&item.value)))
            }
            ValueForm::SelfClosed => xml.push_str(&format!("{}<value/>", pad(3))),
            ValueForm::EmptyPair => xml.push_str(&format!("{}<value></value>", pad(3))),
            ValueForm::Missing => {}
        }
        xml.push_str(&format!("{}</item>", pad(2)));
    }
    xml.push_str(&format!(
        "{}</tagSet>{}</DescribeTagsResponse>",
        pad(1),
        pad(0)
    ));
    xml
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever EC2 may write, `tag_page` reads what the SDK reads.
    #[test]
    fn a_page_reads_as_the_sdk_reads_it(page in page()) {
        let runtime = runtime();
        let xml = render(&page);
        let reference = sdk_reads(&runtime, &xml);
        prop_assert!(reference.is_some(), "the SDK failed on {xml}");
        prop_assert_eq!(parse_tag_page(xml.as_bytes()), reference, "{}", xml);
    }

    /// A body cut short (a dropped connection) is never read as a page.
    #[test]
    fn a_page_cut_short_is_declined(page in page(), cut in 0.0f64..1.0) {
        let xml = render(&page);
        let end = xml.trim_end().len();
        let mut at = ((end as f64) * cut) as usize;
        while !xml.is_char_boundary(at) {
            at -= 1;
        }
        prop_assert_eq!(parse_tag_page(&xml.as_bytes()[..at]), None);
    }
}

const ONE_TAG: &str = r#"<DescribeTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <tagSet>
        <item>
            <resourceId>i-0123456789abcdef0</resourceId>
            <resourceType>instance</resourceType>
            <key>Schedule</key>
            <value>office-hours</value>
        </item>
    </tagSet>
</DescribeTagsResponse>"#;

fn entry(id: &str, key: &str, value: &str) -> TagEntry {
    (id.into(), key.into(), value.into())
}

#[test]
fn given_ec2s_page_then_its_tag_is_read() {
    let page = parse_tag_page(ONE_TAG.as_bytes()).expect("read");
    assert_eq!(
        page.tags,
        vec![entry("i-0123456789abcdef0", "Schedule", "office-hours")]
    );
    assert_eq!(page.next_token, None);
}

#[test]
fn given_what_ec2_does_not_send_then_the_page_is_left_to_the_sdk() {
    let declined = [
        // An error answer.
        r#"<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>"#
            .to_string(),
        // CDATA, a doctype.
        ONE_TAG.replace("office-hours", "<![CDATA[office-hours]]>"),
        ONE_TAG.replacen(
            "<DescribeTagsResponse",
            "<!DOCTYPE x><DescribeTagsResponse",
            1,
        ),
        // Markup inside a field.
        ONE_TAG.replace("office-hours", "office<b/>hours"),
        // An escape XML does not define, a bare ampersand, a forbidden character.
        ONE_TAG.replace("office-hours", "office&nbsp;hours"),
        ONE_TAG.replace("office-hours", "office & hours"),
        ONE_TAG.replace("office-hours", "&#0;"),
        // Unbalanced elements; text after the root; a second root.
        ONE_TAG.replace("</key>", "</value>"),
        format!("{ONE_TAG}trailing"),
        format!("{ONE_TAG}<DescribeTagsResponse/>"),
        // Two tag sets (the SDK keeps only the last).
        ONE_TAG.replace("</tagSet>", "</tagSet><tagSet></tagSet>"),
    ];
    for body in &declined {
        assert_eq!(parse_tag_page(body.as_bytes()), None, "{body}");
    }
    // Not UTF-8.
    assert_eq!(
        parse_tag_page(b"<DescribeTagsResponse>\xff</DescribeTagsResponse>"),
        None
    );
}

#[test]
fn given_an_item_without_a_key_then_it_is_dropped_and_an_empty_token_ends_the_pages() {
    let body = ONE_TAG
        .replace("<key>Schedule</key>", "")
        .replace("<tagSet>", "<nextToken></nextToken><tagSet>");
    let page = parse_tag_page(body.as_bytes()).expect("read");
    assert_eq!(page, TagPage::default());
}

/// The scheduler's read of one region, at noon, with one schedule: `tags`
/// answers every `DescribeTags` call, and `DescribeInstances` finds nothing.
async fn read_with(tags: &Rule) -> Result<FleetRead, DescribeError> {
    let instances = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder().build()
    });
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [tags, &instances]);
    let schedules = fleetops::schedule::parse_schedules(
        r#"{"schedules": {"office-hours": {"periods": [{"begin": "08:00", "end": "18:00"}]}}}"#,
    )
    .expect("schedules");
    let now = "2026-12-02T12:00:00Z".parse().expect("time");
    read_fleet(&ec2, "eu-west-1", "Schedule", &schedules, now, None).await
}

/// Through the scheduler's read: a page `tag_page` reads, and one it
/// declines (two tag sets), which the SDK then reads (its last set).
#[tokio::test]
async fn given_pages_read_and_declined_then_the_fleet_read_has_every_tag() {
    let read = ONE_TAG.replace("<tagSet>", "<nextToken>page-2</nextToken><tagSet>");
    let declined = ONE_TAG
        .replace("i-0123456789abcdef0", "i-0fedcba9876543210")
        .replace("<tagSet>", "<tagSet></tagSet><tagSet>");
    let tags = mock!(aws_sdk_ec2::Client::describe_tags)
        .sequence()
        .http_status(200, Some(read))
        .http_status(200, Some(declined))
        .repeatedly()
        .build();
    let fleet = read_with(&tags).await.expect("read");
    // Both instances were seen with their schedule (`tagged`), whichever
    // reader read their page.
    assert_eq!(fleet.plan.tagged, 2);
}

/// A body that sends nothing, ever.
struct Stalled;

impl http_body::Body for Stalled {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

/// The page reader reads a body before the SDK's stalled-stream guard
/// would: a 200 answer whose body stops must still fail the attempt (and,
/// after the retries, the read), not hang until the Lambda deadline.
#[tokio::test(start_paused = true)]
async fn given_a_body_that_stalls_then_the_read_fails_instead_of_hanging() {
    let tags = mock!(aws_sdk_ec2::Client::describe_tags)
        .sequence()
        .http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(200).expect("a status"),
                aws_smithy_types::body::SdkBody::from_body_1_x(Stalled),
            )
        })
        .repeatedly()
        .build();
    let read = tokio::time::timeout(std::time::Duration::from_secs(3600), read_with(&tags))
        .await
        .expect("the read answers within the hour (virtual time) instead of hanging");
    let error = read.expect_err("a stalled body fails the read");
    assert_eq!(error.operation, "DescribeTags");
}
