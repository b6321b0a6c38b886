//! Business calendars: when work happens (hours per weekday in a time zone, minus Japanese
//! public holidays, yearly closures such as 年末年始, and dated exceptions), and business time
//! measured on them — the ruler SLA clocks use. docs/sla.md, "Calendars".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// How far the business-time walk looks before it gives up (a calendar closed for this long
/// has no business time left: a due time is then unknown).
pub const HORIZON_DAYS: u64 = 3 * 366;
/// Most spans in one day, closures and exceptions per calendar.
pub const MAX_SPANS_PER_DAY: usize = 6;
pub const MAX_CLOSURES: usize = 50;
pub const MAX_EXCEPTIONS: usize = 500;

/// Working time within one day, `HH:MM` to `HH:MM` (end `24:00` for midnight), local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"start": "09:00", "end": "18:00"}))]
pub struct Span {
    #[schema(value_type = String, example = "09:00")]
    #[serde(with = "hhmm")]
    pub start: u16,
    #[schema(value_type = String, example = "18:00")]
    #[serde(with = "hhmm")]
    pub end: u16,
}

/// A closure every year from one month-day to another (`12-29` to `01-03` wraps the year).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "12-29", "to": "01-03", "name": "年末年始"}))]
pub struct Closure {
    /// `MM-DD`, the first closed day.
    pub from: String,
    /// `MM-DD`, the last closed day.
    pub to: String,
    #[serde(default)]
    pub name: String,
}

/// One date with its own hours, over anything else (`hours: []` closes a working day; hours
/// open a holiday).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"date": "2026-12-26", "hours": [{"start": "09:00", "end": "12:00"}], "name": "棚卸"}))]
pub struct Exception {
    pub date: NaiveDate,
    pub hours: Vec<Span>,
    #[serde(default)]
    pub name: String,
}

/// Working hours per weekday; a day left out (or empty) has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Week {
    #[serde(default)]
    pub mon: Vec<Span>,
    #[serde(default)]
    pub tue: Vec<Span>,
    #[serde(default)]
    pub wed: Vec<Span>,
    #[serde(default)]
    pub thu: Vec<Span>,
    #[serde(default)]
    pub fri: Vec<Span>,
    #[serde(default)]
    pub sat: Vec<Span>,
    #[serde(default)]
    pub sun: Vec<Span>,
}

impl Week {
    /// Monday to Friday, 09:00–18:00.
    pub fn office() -> Self {
        let day = vec![Span {
            start: 9 * 60,
            end: 18 * 60,
        }];
        Self {
            mon: day.clone(),
            tue: day.clone(),
            wed: day.clone(),
            thu: day.clone(),
            fri: day,
            sat: Vec::new(),
            sun: Vec::new(),
        }
    }

    pub fn day(&self, weekday: Weekday) -> &[Span] {
        match weekday {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }

    fn days(&self) -> [(&'static str, &[Span]); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

/// What a calendar says, as written (the stored and the API form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub working_hours: Week,
    pub japanese_holidays: bool,
    pub closures: Vec<Closure>,
    pub exceptions: Vec<Exception>,
}

/// A problem with a calendar as written: where (a JSON-pointer-like path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

fn problem(
    field: impl Into<String>,
    code: &'static str,
    message: impl Into<String>,
) -> CalendarError {
    CalendarError {
        field: field.into(),
        code,
        message: message.into(),
    }
}

/// A checked calendar, ready to measure business time.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: Tz,
    week: Week,
    japanese_holidays: bool,
    /// Closed `(month, day)` pairs.
    closed: BTreeSet<(u32, u32)>,
    exceptions: BTreeMap<NaiveDate, Vec<Span>>,
}

/// The 24-hour, 7-day calendar in UTC: business time is elapsed time.
pub fn always() -> Calendar {
    let day = vec![Span {
        start: 0,
        end: 24 * 60,
    }];
    Calendar {
        tz: Tz::UTC,
        week: Week {
            mon: day.clone(),
            tue: day.clone(),
            wed: day.clone(),
            thu: day.clone(),
            fri: day.clone(),
            sat: day.clone(),
            sun: day,
        },
        japanese_holidays: false,
        closed: BTreeSet::new(),
        exceptions: BTreeMap::new(),
    }
}

fn check_spans(path: &str, spans: &[Span]) -> Result<(), CalendarError> {
    if spans.len() > MAX_SPANS_PER_DAY {
        return Err(problem(
            path,
            "too_many",
            format!("at most {MAX_SPANS_PER_DAY} spans a day"),
        ));
    }
    let mut last_end = 0;
    for (i, span) in spans.iter().enumerate() {
        if span.start >= span.end {
            return Err(problem(
                format!("{path}/{i}"),
                "invalid",
                "a span ends after it starts",
            ));
        }
        if i > 0 && span.start < last_end {
            return Err(problem(
                format!("{path}/{i}"),
                "overlap",
                "spans are in order and do not overlap",
            ));
        }
        last_end = span.end;
    }
    Ok(())
}

fn month_day(path: &str, text: &str) -> Result<(u32, u32), CalendarError> {
    let bad = || problem(path, "invalid", "a month and day, `MM-DD`");
    let (m, d) = text.split_once('-').ok_or_else(bad)?;
    if m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (m, d): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    // 2024 is a leap year: 02-29 is a valid closure day.
    NaiveDate::from_ymd_opt(2024, m, d).ok_or_else(bad)?;
    Ok((m, d))
}

impl Calendar {
    /// Checks the rules; the errors name the member (`working_hours/mon/0`, `closures/1/from`).
    pub fn new(time_zone: &str, rules: &Rules) -> Result<Self, CalendarError> {
        let tz: Tz = time_zone
            .parse()
            .map_err(|_| problem("time_zone", "invalid", "not an IANA time zone name"))?;
        let mut any = false;
        for (day, spans) in rules.working_hours.days() {
            check_spans(&format!("working_hours/{day}"), spans)?;
            any |= !spans.is_empty();
        }
        if !any {
            return Err(problem(
                "working_hours",
                "empty",
                "a calendar works at some time of the week",
            ));
        }
        if rules.closures.len() > MAX_CLOSURES {
            return Err(problem(
                "closures",
                "too_many",
                format!("at most {MAX_CLOSURES} closures"),
            ));
        }
        let mut closed = BTreeSet::new();
        for (i, c) in rules.closures.iter().enumerate() {
            let from = month_day(&format!("closures/{i}/from"), &c.from)?;
            let to = month_day(&format!("closures/{i}/to"), &c.to)?;
            // Walk a leap year from `from` to `to`, wrapping at the year's end.
            let start = NaiveDate::from_ymd_opt(2024, from.0, from.1).unwrap_or_default();
            let mut day = start;
            loop {
                closed.insert((day.month(), day.day()));
                if (day.month(), day.day()) == to {
                    break;
                }
                day = day.succ_opt().unwrap_or(start);
                if day.year() == 2025 {
                    day = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(start);
                }
                if day == start {
                    break;
                }
            }
        }
        if rules.exceptions.len() > MAX_EXCEPTIONS {
            return Err(problem(
                "exceptions",
                "too_many",
                format!("at most {MAX_EXCEPTIONS} exceptions"),
            ));
        }
        let mut exceptions = BTreeMap::new();
        for (i, e) in rules.exceptions.iter().enumerate() {
            check_spans(&format!("exceptions/{i}/hours"), &e.hours)?;
            if exceptions.insert(e.date, e.hours.clone()).is_some() {
                return Err(problem(
                    format!("exceptions/{i}/date"),
                    "duplicate",
                    "one exception per date",
                ));
            }
        }
        Ok(Self {
            tz,
            week: rules.working_hours.clone(),
            japanese_holidays: rules.japanese_holidays,
            closed,
            exceptions,
        })
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The working spans of a local date, after holidays, closures and exceptions.
    pub fn hours_on(&self, date: NaiveDate) -> &[Span] {
        if let Some(spans) = self.exceptions.get(&date) {
            return spans;
        }
        if self.closed.contains(&(date.month(), date.day()))
            || (self.japanese_holidays && is_japanese_holiday(date))
        {
            return &[];
        }
        self.week.day(date.weekday())
    }

    /// The UTC intervals of one local date's working spans.
    fn intervals(
        &self,
        date: NaiveDate,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        self.hours_on(date)
            .iter()
            .filter_map(move |s| Some((self.instant(date, s.start)?, self.instant(date, s.end)?)))
    }

    /// A local date and minute of the day as an instant (the earlier one when a clock change
    /// repeats it, the next valid one when it skips it).
    fn instant(&self, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        let (date, minute) = if minute >= 24 * 60 {
            (date.succ_opt()?, minute - 24 * 60)
        } else {
            (date, minute)
        };
        let time = NaiveTime::from_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?;
        let local = date.and_time(time);
        match self.tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            chrono::LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
            chrono::LocalResult::None => self
                .tz
                .from_local_datetime(&(local + TimeDelta::hours(1)))
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Business time between two instants (zero when `to` is not after `from`).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        if to <= from {
            return TimeDelta::zero();
        }
        let mut total = TimeDelta::zero();
        // A day before `from`'s local date: a span past midnight of the day before.
        let mut date = self.local_date(from) - Days::new(1);
        let last = self.local_date(to);
        while date <= last {
            for (start, end) in self.intervals(date) {
                let (s, e) = (start.max(from), end.min(to));
                if e > s {
                    total += e - s;
                }
            }
            date = date + Days::new(1);
        }
        total
    }

    /// The instant when `amount` of business time has passed after `from` (`from` itself for
    /// zero); `None` when the calendar has no working time for [`HORIZON_DAYS`].
    pub fn add(&self, from: DateTime<Utc>, amount: TimeDelta) -> Option<DateTime<Utc>> {
        if amount <= TimeDelta::zero() {
            return Some(from);
        }
        let mut left = amount;
        let mut date = self.local_date(from) - Days::new(1);
        let mut idle_days = 0;
        while idle_days <= HORIZON_DAYS {
            let mut worked = false;
            for (start, end) in self.intervals(date) {
                let s = start.max(from);
                if end <= s {
                    continue;
                }
                worked = true;
                if end - s >= left {
                    return Some(s + left);
                }
                left -= end - s;
            }
            idle_days = if worked { 0 } else { idle_days + 1 };
            date = date + Days::new(1);
        }
        None
    }
}

/// Whether a date is a Japanese public holiday (national holidays, substitute holidays and
/// citizens' holidays), from the `jpholiday` crate, one year computed at a time.
pub fn is_japanese_holiday(date: NaiveDate) -> bool {
    japanese_holidays(date.year()).contains_key(&date)
}

/// One year's holidays by date, with their names.
pub type Holidays = BTreeMap<NaiveDate, String>;

/// A year's Japanese public holidays with their names.
pub fn japanese_holidays(year: i32) -> Arc<Holidays> {
    static YEARS: OnceLock<RwLock<HashMap<i32, Arc<Holidays>>>> = OnceLock::new();
    let years = YEARS.get_or_init(Default::default);
    if let Some(found) = years.read().unwrap_or_else(|p| p.into_inner()).get(&year) {
        return found.clone();
    }
    let computed: Holidays = jpholiday::jpholiday::JPHoliday::new()
        .year_holidays(year)
        .into_iter()
        .collect();
    let computed = Arc::new(computed);
    years
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(year, computed.clone());
    computed
}

/// `HH:MM` ⇄ minutes of the day (`24:00` allowed as an end).
mod hhmm {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(minutes: &u16, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}:{:02}", minutes / 60, minutes % 60))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| D::Error::custom(format!("`{text}` is not a time `HH:MM`")))
    }

    pub fn parse(text: &str) -> Option<u16> {
        let (h, m) = text.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        match (h, m) {
            (24, 0) => Some(24 * 60),
            (0..=23, 0..=59) => Some(h * 60 + m),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
