use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::*;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn tokyo(rules: impl FnOnce(&mut Rules)) -> Calendar {
    let mut r = Rules {
        working_hours: Week::office(),
        japanese_holidays: true,
        closures: Vec::new(),
        exceptions: Vec::new(),
    };
    rules(&mut r);
    Calendar::new("Asia/Tokyo", &r).unwrap()
}

#[test]
fn japanese_holidays_of_known_years() {
    let names = japanese_holidays(2026);
    let days: Vec<NaiveDate> = names.keys().copied().collect();
    let expected = [
        (1, 1),
        (1, 12),
        (2, 11),
        (2, 23),
        (3, 20),
        (4, 29),
        (5, 3),
        (5, 4),
        (5, 5),
        (5, 6),
        (7, 20),
        (8, 11),
        (9, 21),
        (9, 22),
        (9, 23),
        (10, 12),
        (11, 3),
        (11, 23),
    ]
    .map(|(m, d)| date(2026, m, d));
    assert_eq!(days, expected);
    // Constitution Day fell on a Sunday: the substitute holiday is the next day that is not
    // a holiday, Wednesday 6 May.
    assert!(names[&date(2026, 5, 6)].contains("振替休日"));
    // Between Respect for the Aged Day and the equinox: a citizens' holiday.
    assert_eq!(names[&date(2026, 9, 22)], "国民の休日");
    // Labour Thanksgiving on a Sunday in 2025: Monday 24 November is its substitute.
    assert!(is_japanese_holiday(date(2025, 11, 24)));
    // The enthronement holidays of 2019.
    assert!(is_japanese_holiday(date(2019, 5, 1)));
    assert!(is_japanese_holiday(date(2019, 10, 22)));
    assert!(!is_japanese_holiday(date(2026, 5, 7)));
    assert!(!is_japanese_holiday(date(2026, 12, 29)));
}

#[test]
fn business_time_counts_working_hours_only() {
    let cal = tokyo(|_| {});
    // Wednesday 1 April 2026, 10:00 to 15:00 JST.
    assert_eq!(
        cal.between(at("2026-04-01T01:00:00Z"), at("2026-04-01T06:00:00Z")),
        TimeDelta::hours(5)
    );
    // 17:00 to the next day's 10:00: one hour on each side of the night.
    assert_eq!(
        cal.between(at("2026-04-01T08:00:00Z"), at("2026-04-02T01:00:00Z")),
        TimeDelta::hours(2)
    );
    // Friday 17:00 to Monday 10:00: the weekend does not count.
    assert_eq!(
        cal.between(at("2026-04-03T08:00:00Z"), at("2026-04-06T01:00:00Z")),
        TimeDelta::hours(2)
    );
    assert_eq!(
        cal.between(at("2026-04-06T01:00:00Z"), at("2026-04-03T08:00:00Z")),
        TimeDelta::zero()
    );
}

#[test]
fn golden_week_and_the_substitute_holiday_pause_business_time() {
    let cal = tokyo(|_| {});
    // Friday 1 May 17:00 JST plus two business hours: one on Friday; Saturday to Wednesday
    // 6 May (the substitute holiday) are off; the second ends Thursday 7 May 10:00 JST.
    assert_eq!(
        cal.add(at("2026-05-01T08:00:00Z"), TimeDelta::hours(2)),
        Some(at("2026-05-07T01:00:00Z"))
    );
    assert_eq!(
        cal.between(at("2026-05-01T08:00:00Z"), at("2026-05-07T01:00:00Z")),
        TimeDelta::hours(2)
    );
    // Without the holidays, Monday 4 May 10:00.
    let plain = tokyo(|r| r.japanese_holidays = false);
    assert_eq!(
        plain.add(at("2026-05-01T08:00:00Z"), TimeDelta::hours(2)),
        Some(at("2026-05-04T01:00:00Z"))
    );
}

#[test]
fn a_yearly_closure_wraps_the_year_end() {
    let cal = tokyo(|r| {
        r.closures.push(Closure {
            from: "12-29".into(),
            to: "01-03".into(),
            name: "年末年始".into(),
        })
    });
    for d in [
        date(2026, 12, 29),
        date(2026, 12, 31),
        date(2027, 1, 1),
        date(2027, 1, 3),
    ] {
        assert!(cal.hours_on(d).is_empty(), "{d}");
    }
    // Monday 28 December 2026 17:00 JST plus two hours: Monday 4 January 2027 10:00.
    assert_eq!(
        cal.add(at("2026-12-28T08:00:00Z"), TimeDelta::hours(2)),
        Some(at("2027-01-04T01:00:00Z"))
    );
}

#[test]
fn an_exception_overrides_weekday_and_holiday() {
    let cal = tokyo(|r| {
        r.exceptions.push(Exception {
            date: date(2026, 5, 6),
            hours: vec![Span {
                start: 9 * 60,
                end: 12 * 60,
            }],
            name: "臨時出勤".into(),
        });
        r.exceptions.push(Exception {
            date: date(2026, 4, 1),
            hours: Vec::new(),
            name: "創立記念日".into(),
        });
    });
    assert_eq!(cal.hours_on(date(2026, 5, 6)).len(), 1);
    assert!(cal.hours_on(date(2026, 4, 1)).is_empty());
    assert_eq!(
        cal.add(at("2026-05-01T08:00:00Z"), TimeDelta::hours(2)),
        Some(at("2026-05-06T01:00:00Z"))
    );
}

#[test]
fn add_and_between_agree() {
    let cal = tokyo(|r| {
        r.working_hours.mon = vec![
            Span {
                start: 9 * 60,
                end: 12 * 60,
            },
            Span {
                start: 13 * 60,
                end: 24 * 60,
            },
        ]
    });
    let from = at("2026-04-02T05:17:00Z");
    for minutes in [1, 59, 60, 61, 540, 541, 5_000, 20_000] {
        let amount = TimeDelta::minutes(minutes);
        let end = cal.add(from, amount).unwrap();
        assert_eq!(cal.between(from, end), amount, "{minutes}");
    }
    assert_eq!(cal.add(from, TimeDelta::zero()), Some(from));
}

#[test]
fn always_is_elapsed_time() {
    let cal = always();
    let from = at("2026-04-01T23:30:00Z");
    assert_eq!(
        cal.add(from, TimeDelta::hours(49)),
        Some(from + TimeDelta::hours(49))
    );
    assert_eq!(
        cal.between(from, from + TimeDelta::hours(49)),
        TimeDelta::hours(49)
    );
}

#[test]
fn bad_rules_are_located() {
    let base = || Rules {
        working_hours: Week::office(),
        japanese_holidays: true,
        closures: Vec::new(),
        exceptions: Vec::new(),
    };
    let err = |tz: &str, r: Rules| Calendar::new(tz, &r).unwrap_err();
    assert_eq!(err("Mars/Olympus", base()).field, "time_zone");
    let mut r = base();
    r.working_hours = Week::default();
    assert_eq!(err("Asia/Tokyo", r).code, "empty");
    let mut r = base();
    r.working_hours.tue = vec![Span {
        start: 600,
        end: 540,
    }];
    assert_eq!(err("Asia/Tokyo", r).field, "working_hours/tue/0");
    let mut r = base();
    r.working_hours.wed = vec![
        Span {
            start: 540,
            end: 720,
        },
        Span {
            start: 700,
            end: 800,
        },
    ];
    assert_eq!(err("Asia/Tokyo", r).code, "overlap");
    let mut r = base();
    r.closures.push(Closure {
        from: "02-30".into(),
        to: "03-01".into(),
        name: String::new(),
    });
    assert_eq!(err("Asia/Tokyo", r).field, "closures/0/from");
    let mut r = base();
    let e = Exception {
        date: date(2026, 1, 5),
        hours: Vec::new(),
        name: String::new(),
    };
    r.exceptions = vec![e.clone(), e];
    assert_eq!(err("Asia/Tokyo", r).field, "exceptions/1/date");
}

#[test]
fn hours_read_and_write_as_hh_mm() {
    let span: Span = serde_json::from_str(r#"{"start": "09:30", "end": "24:00"}"#).unwrap();
    assert_eq!((span.start, span.end), (570, 1440));
    assert_eq!(
        serde_json::to_string(&span).unwrap(),
        r#"{"start":"09:30","end":"24:00"}"#
    );
    for bad in ["9:30", "24:01", "12:60", "ab:cd"] {
        let text = format!(r#"{{"start": "{bad}", "end": "18:00"}}"#);
        assert!(serde_json::from_str::<Span>(&text).is_err(), "{bad}");
    }
}
