//! One `DescribeTags` page, read straight from EC2's XML into the three
//! strings the tick keeps of each tag (pure).
//!
//! Why not the SDK's deserializer: it runs a general XML tokenizer
//! (`xmlparser`, which checks every character of every name) under a
//! generic decoding layer, and builds a `TagDescription` per tag (four owned
//! strings and a `ResourceType` matched from some 80 names). At 10,000
//! instances a quiet tick reads 20,000 tags, about 4.5 MB of XML: that was
//! three quarters of the tick's instructions (callgrind, BENCHMARKS.md).
//! Through the tokenizer alone, without the SDK's layer, it still was half.
//!
//! This reads the one shape `DescribeTags` answers in, in one pass over the
//! bytes, and keeps only what the tick uses. Whatever it does not
//! recognise (CDATA, a doctype, markup inside a field, an undefined escape,
//! unbalanced or unclosed elements, a second tag set, text outside the root)
//! it declines (`None`), and the SDK's deserializer reads the page as before:
//! a decline costs CPU, never a tag. `shared/tests/tag_page.rs` compares it
//! with the SDK's deserializer on generated pages.

/// One tag as `DescribeTags` returned it: resource id, key, value.
pub type TagEntry = (String, String, String);

/// What one page says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagPage {
    pub tags: Vec<TagEntry>,
    /// `None` on the last page (EC2 sends an empty token at times too).
    pub next_token: Option<String>,
}

/// The response's root element (EC2's query protocol: `<Action>Response`).
const ROOT: &str = "DescribeTagsResponse";

/// What an open element is to the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Root,
    NextToken,
    TagSet,
    Item,
    ResourceId,
    Key,
    Value,
    /// Anything else, and all it holds: skipped.
    Other,
}

impl Kind {
    /// The kind of a `local` element opened inside `parent` (`None`: the root).
    fn of(parent: Option<Kind>, local: &str) -> Option<Kind> {
        Some(match (parent, local) {
            (None, ROOT) => Kind::Root,
            (None, _) => return None,
            (Some(Kind::Root), "nextToken") => Kind::NextToken,
            (Some(Kind::Root), "tagSet") => Kind::TagSet,
            (Some(Kind::TagSet), "item") => Kind::Item,
            (Some(Kind::Item), "resourceId") => Kind::ResourceId,
            (Some(Kind::Item), "key") => Kind::Key,
            (Some(Kind::Item), "value") => Kind::Value,
            // Markup inside a text field: the SDK fails on it.
            (Some(field), _) if field.is_text() => return None,
            (Some(_), _) => Kind::Other,
        })
    }

    fn is_text(self) -> bool {
        matches!(
            self,
            Kind::NextToken | Kind::ResourceId | Kind::Key | Kind::Value
        )
    }
}

/// The item being read: its fields as far as they came.
#[derive(Default)]
struct Item {
    resource_id: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

/// The page being read.
#[derive(Default)]
struct Reader<'a> {
    /// Open elements: qualified name and kind, root first.
    open: Vec<(&'a str, Kind)>,
    page: TagPage,
    item: Item,
    tag_sets: usize,
    root_closed: bool,
    /// Whether the innermost text field already had its first text node.
    filled: bool,
}

impl<'a> Reader<'a> {
    fn open(&mut self, name: &'a str) -> Option<()> {
        if self.root_closed {
            return None;
        }
        let kind = Kind::of(self.open.last().map(|(_, k)| *k), local_name(name))?;
        if kind == Kind::TagSet {
            // The SDK would keep only the last of several.
            self.tag_sets += 1;
            if self.tag_sets > 1 {
                return None;
            }
        }
        // As the SDK reads it, a field with no text is the empty string.
        let field = match kind {
            Kind::NextToken => Some(&mut self.page.next_token),
            Kind::ResourceId => Some(&mut self.item.resource_id),
            Kind::Key => Some(&mut self.item.key),
            Kind::Value => Some(&mut self.item.value),
            _ => None,
        };
        if let Some(field) = field {
            *field = Some(String::new());
        }
        self.filled = false;
        self.open.push((name, kind));
        Some(())
    }

    fn close(&mut self, name: &str) -> Option<()> {
        let (open_name, kind) = self.open.pop()?;
        if open_name != name {
            return None;
        }
        if kind == Kind::Item {
            let done = std::mem::take(&mut self.item);
            // EC2 always sends both; an entry without them says nothing.
            if let (Some(id), Some(key)) = (done.resource_id, done.key) {
                self.page
                    .tags
                    .push((id, key, done.value.unwrap_or_default()));
            }
        }
        self.root_closed = self.open.is_empty();
        self.filled = true;
        Some(())
    }

    fn text(&mut self, raw: &str) -> Option<()> {
        if raw.is_empty() {
            return Some(());
        }
        let Some((_, kind)) = self.open.last() else {
            // Outside the root only white space is XML.
            return raw.bytes().all(|b| b.is_ascii_whitespace()).then_some(());
        };
        // The white space between elements, the text of elements it skips
        // (which the SDK does not unescape either).
        if !kind.is_text() || self.filled {
            return Some(());
        }
        let value = Some(unescape(raw)?);
        match kind {
            Kind::NextToken => self.page.next_token = value,
            Kind::ResourceId => self.item.resource_id = value,
            Kind::Key => self.item.key = value,
            _ => self.item.value = value,
        }
        self.filled = true;
        Some(())
    }
}

/// `name` without its namespace prefix.
fn local_name(name: &str) -> &str {
    match name.bytes().rposition(|b| b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    }
}

/// Where the next `byte` is in `bytes`, from `from`. (A plain loop: the
/// texts between two tags are short, so a call's set-up costs more than
/// its scan.)
fn find_byte(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|&b| b == byte)
        .map(|i| from + i)
}

/// Reads a `DescribeTags` response body; `None` when it is not a complete,
/// well-formed one in the shape EC2 sends (an error response, a truncated
/// body, CDATA, an escape XML does not define), so the caller leaves the
/// page to the SDK.
///
/// As the SDK does: a field's text is its first text node, unescaped, and
/// the empty string if it has none; of a field given twice, the last
/// counts; an item without a resource id or a key is dropped (EC2 always
/// sends both); a missing value is the empty string; elements it does not
/// know are skipped, whatever they hold.
pub fn parse_tag_page(body: &[u8]) -> Option<TagPage> {
    let text = std::str::from_utf8(body).ok()?;
    let bytes = text.as_bytes();
    let mut reader = Reader::default();
    let mut at = 0;
    while at < bytes.len() {
        let Some(lt) = find_byte(bytes, at, b'<') else {
            reader.text(&text[at..])?;
            break;
        };
        // Both ends are ASCII, so on character boundaries.
        reader.text(&text[at..lt])?;
        at = markup_end(text, lt, &mut reader)?;
    }
    if !reader.root_closed {
        return None;
    }
    let mut page = reader.page;
    page.next_token = page.next_token.filter(|t| !t.is_empty());
    Some(page)
}

/// Reads the markup at `lt` (a `<`) into `reader`; where it ends, or
/// `None` if it is not markup this page may hold.
fn markup_end<'a>(text: &'a str, lt: usize, reader: &mut Reader<'a>) -> Option<usize> {
    let bytes = text.as_bytes();
    match bytes.get(lt + 1)? {
        b'?' => {
            // The XML declaration, a processing instruction: nothing to read.
            let end = text.get(lt + 2..)?.find("?>")?;
            return Some(lt + 2 + end + 2);
        }
        b'!' => {
            // A comment; CDATA or a doctype are not what EC2 sends.
            let rest = text.get(lt..)?.strip_prefix("<!--")?;
            return Some(lt + 4 + rest.find("-->")? + 3);
        }
        b'/' => {
            let gt = find_byte(bytes, lt + 2, b'>')?;
            reader.close(text[lt + 2..gt].trim_end())?;
            return Some(gt + 1);
        }
        _ => {}
    }
    let start = lt + 1;
    let mut i = start;
    while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>') {
        i += 1;
    }
    let name = &text[start..i];
    if name.is_empty() {
        return None;
    }
    // To the tag's `>`, over quoted attribute values (which may hold one).
    let name_end = i;
    let mut quote = None;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (None, b'"' | b'\'') => quote = Some(bytes[i]),
            (Some(q), b) if b == q => quote = None,
            (None, b'>') => break,
            (None, b'<') => return None,
            _ => {}
        }
        i += 1;
    }
    if i == bytes.len() {
        return None;
    }
    reader.open(name)?;
    if i > name_end && bytes[i - 1] == b'/' {
        reader.close(name)?;
    }
    Some(i + 1)
}

/// XML's five predefined entities and character references; `None` for
/// anything else (an undefined entity, a character XML forbids).
fn unescape(raw: &str) -> Option<String> {
    if !raw.as_bytes().contains(&b'&') {
        return Some(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut sections = raw.split('&');
    out.push_str(sections.next().unwrap_or_default());
    for section in sections {
        let (entity, rest) = section.split_once(';')?;
        match entity {
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "amp" => out.push('&'),
            "quot" => out.push('"'),
            "apos" => out.push('\''),
            _ => out.push(character_reference(entity)?),
        }
        out.push_str(rest);
    }
    Some(out)
}

/// `#123` or `#x7B`, if it names a character XML allows.
fn character_reference(entity: &str) -> Option<char> {
    let (digits, radix) = match entity.strip_prefix("#x") {
        Some(hex) => (hex, 16),
        None => (entity.strip_prefix('#')?, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let code = u32::from_str_radix(digits, radix).ok()?;
    if !matches!(code, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF) {
        return None;
    }
    char::from_u32(code)
}
