//! Parsers for the small grammars inside a period: `HH:MM`, weekdays, monthdays,
//! months. Each returns a plain problem string; the caller adds the schedule name
//! and the field path.

use jiff::civil::{Date, Time, Weekday};

/// A local wall-clock time of day, `HH:MM` in 24-hour form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockTime {
    pub hour: i8,
    pub minute: i8,
}

impl ClockTime {
    pub fn to_time(self) -> Time {
        Time::constant(self.hour, self.minute, 0, 0)
    }
}

impl std::fmt::Display for ClockTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// Strict `HH:MM`: two digits each, hour 00-23. `9:00` and `24:00` are refused
/// rather than guessed at, because a wrong guess stops production instances.
pub fn parse_clock_time(text: &str) -> Result<ClockTime, String> {
    let bytes = text.as_bytes();
    let well_formed = bytes.len() == 5
        && bytes[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| bytes[i].is_ascii_digit());
    if !well_formed {
        return Err(format!(
            "\"{text}\" is not a time; expected HH:MM with two-digit hour and minute, e.g. \"09:00\""
        ));
    }
    let hour = (bytes[0] - b'0') * 10 + (bytes[1] - b'0');
    let minute = (bytes[3] - b'0') * 10 + (bytes[4] - b'0');
    if hour > 23 {
        return Err(format!(
            "\"{text}\": hour must be 00-23 (for midnight at the end of a day use \"00:00\" as an overnight end, or \"23:59\")"
        ));
    }
    if minute > 59 {
        return Err(format!("\"{text}\": minute must be 00-59"));
    }
    Ok(ClockTime {
        hour: hour as i8,
        minute: minute as i8,
    })
}

/// One item of a `weekdays` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeekdayRule {
    /// Every occurrence of the weekday.
    Every(Weekday),
    /// The n-th (1-5) occurrence in the month: `mon#1`.
    Nth(Weekday, i8),
    /// The last occurrence in the month: `friL`.
    Last(Weekday),
}

impl WeekdayRule {
    pub fn matches(self, date: Date) -> bool {
        match self {
            WeekdayRule::Every(day) => date.weekday() == day,
            WeekdayRule::Nth(day, n) => date.weekday() == day && (date.day() - 1) / 7 + 1 == n,
            WeekdayRule::Last(day) => {
                date.weekday() == day && i16::from(date.day()) + 7 > i16::from(date.days_in_month())
            }
        }
    }
}

const WEEKDAY_NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn weekday_named(name: &str) -> Result<Weekday, String> {
    let lower = name.trim().to_ascii_lowercase();
    WEEKDAY_NAMES
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            format!("unknown weekday \"{name}\"; expected one of mon, tue, wed, thu, fri, sat, sun")
        })
}

/// `mon-fri`, `sat,sun`, `mon#1`, `friL`, and ranges that wrap (`fri-mon`).
/// Day names are case-insensitive: `Mon-Fri` means what it says.
pub fn parse_weekdays(text: &str) -> Result<Vec<WeekdayRule>, String> {
    list_items(text)?
        .into_iter()
        .map(|item| {
            if let Some((day, nth)) = item.split_once('#') {
                let day = weekday_named(day)?;
                let n: i8 = nth
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=5).contains(n))
                    .ok_or_else(|| format!("\"{item}\": the number after # must be 1-5"))?;
                return Ok(vec![WeekdayRule::Nth(day, n)]);
            }
            if item.len() == 4 && (item.ends_with('L') || item.ends_with('l')) {
                return Ok(vec![WeekdayRule::Last(weekday_named(&item[..3])?)]);
            }
            if let Some((from, to)) = item.split_once('-') {
                let (from, to) = (weekday_named(from)?, weekday_named(to)?);
                let span = from.until(to);
                return Ok((0..=span)
                    .map(|i| WeekdayRule::Every(from.wrapping_add(i)))
                    .collect());
            }
            Ok(vec![WeekdayRule::Every(weekday_named(item)?)])
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|nested| nested.into_iter().flatten().collect())
}

/// One item of a `monthdays` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonthdayRule {
    /// Days `from..=to` of the month (a single day when equal).
    Range(i8, i8),
    /// From a day to the last day of the month: `15-L`.
    FromToLast(i8),
    /// The last day of the month: `L`.
    Last,
}

impl MonthdayRule {
    pub fn matches(self, date: Date) -> bool {
        match self {
            MonthdayRule::Range(from, to) => (from..=to).contains(&date.day()),
            MonthdayRule::FromToLast(from) => date.day() >= from,
            MonthdayRule::Last => date.day() == date.days_in_month(),
        }
    }
}

fn monthday_number(text: &str) -> Result<i8, String> {
    text.trim()
        .parse::<i8>()
        .ok()
        .filter(|d| (1..=31).contains(d))
        .ok_or_else(|| format!("\"{text}\" is not a day of the month; expected 1-31 or L"))
}

/// `1-15`, `1,15`, `L`, `15-L`.
pub fn parse_monthdays(text: &str) -> Result<Vec<MonthdayRule>, String> {
    list_items(text)?
        .into_iter()
        .map(|item| {
            if item.eq_ignore_ascii_case("L") {
                return Ok(MonthdayRule::Last);
            }
            if let Some((from, to)) = item.split_once('-') {
                let from = monthday_number(from)?;
                if to.trim().eq_ignore_ascii_case("L") {
                    return Ok(MonthdayRule::FromToLast(from));
                }
                let to = monthday_number(to)?;
                if to < from {
                    return Err(format!(
                        "\"{item}\": a monthday range must not run backwards"
                    ));
                }
                return Ok(MonthdayRule::Range(from, to));
            }
            let day = monthday_number(item)?;
            Ok(MonthdayRule::Range(day, day))
        })
        .collect()
}

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month_number(text: &str) -> Result<i8, String> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some(i) = MONTH_NAMES.iter().position(|m| *m == lower) {
        return Ok(i as i8 + 1);
    }
    lower
        .parse::<i8>()
        .ok()
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(|| format!("unknown month \"{text}\"; expected jan-dec or 1-12"))
}

/// `jan-mar`, `1-6`, `dec,jan`; ranges may wrap the year end (`nov-feb`).
/// Returns the set of months as a 12-bit mask (bit 0 = January).
pub fn parse_months(text: &str) -> Result<u16, String> {
    let mut mask = 0u16;
    for item in list_items(text)? {
        let (from, to) = match item.split_once('-') {
            Some((from, to)) => (month_number(from)?, month_number(to)?),
            None => {
                let m = month_number(item)?;
                (m, m)
            }
        };
        let mut m = from;
        loop {
            mask |= 1 << (m - 1);
            if m == to {
                break;
            }
            m = m % 12 + 1;
        }
    }
    Ok(mask)
}

fn list_items(text: &str) -> Result<Vec<&str>, String> {
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(format!(
            "\"{text}\" has an empty item; expected a comma-separated list"
        ));
    }
    Ok(items)
}

/// A `skip_dates` entry: a calendar date, or the same month and day every year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipDate {
    Once(Date),
    Yearly { month: i8, day: i8 },
}

impl SkipDate {
    pub fn matches(self, date: Date) -> bool {
        match self {
            SkipDate::Once(d) => d == date,
            SkipDate::Yearly { month, day } => date.month() == month && date.day() == day,
        }
    }
}

/// `YYYY-MM-DD` or `MM-DD`.
pub fn parse_skip_date(text: &str) -> Result<SkipDate, String> {
    let expected = || format!("\"{text}\" is not a date; expected YYYY-MM-DD or MM-DD");
    match text.len() {
        10 => text
            .parse::<Date>()
            .map(SkipDate::Once)
            .map_err(|_| expected()),
        5 => {
            let (m, d) = text.split_once('-').ok_or_else(expected)?;
            let month: i8 = m.parse().map_err(|_| expected())?;
            let day: i8 = d.parse().map_err(|_| expected())?;
            // 2024 is a leap year, so 02-29 is accepted as a yearly date.
            Date::new(2024, month, day).map_err(|_| expected())?;
            Ok(SkipDate::Yearly { month, day })
        }
        _ => Err(expected()),
    }
}
