"""Scheduled compliance reports (`reports:`): when they go in the site's timezone (across the
nights the clocks change in Europe/Berlin), the one missed while the site was down, the message
and its report.csv through apprise's json:// to a real HTTP receiver on loopback, the filters,
the config's checks, `run --check` and `maskwatch report`, and the URLs' secrets never shown."""

import base64
import csv
import io
import logging
from datetime import date, datetime

import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.site.config import SiteConfigError, load_site_config
from maskwatch.site.events import EventStore
from maskwatch.site.prevalence import compliance_fields
from maskwatch.site.report import REPORT_COLUMNS
from maskwatch.site.reports import ReportScheduler, ReportSender, Schedule, reports_of
from tests.test_alerts import Receiver
from tests.test_events import person
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_notify import BERLIN, SECRET, RootLog, json_url, messages

MASKED, BARE, WRONG, UNDECIDED = (0.9, 0.05, 0.05), (0.05, 0.9, 0.05), (0.05, 0.05, 0.9), None


def utc(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


def site_file(tmp_path, reports: str):
    path = tmp_path / "site.yaml"
    path.write_text("cameras:\n"
                    "  door: {name: Front door, source: webcam:0, zones: {queue: [[0, 0], [1, 0], [1, 1]]}}\n"
                    "  till: {name: Till, source: webcam:1}\n"
                    f"timezone: Europe/Berlin\nreports: {reports}\n")
    return path


@pytest.fixture()
def make(tmp_path):
    """A site's config with `reports`, its store (one database for every scheduler: a restart) and
    a scheduler on them, as the site makes them."""
    stores = []

    def scheduler(reports: str, *, start: bool = False, path=None) -> ReportScheduler:
        config = load_site_config(path or site_file(tmp_path, reports), environ={})
        if not stores:
            stores.append(EventStore(config.storage.database, config.storage.snapshots, retention_days=10_000))
        names = {camera_id: camera.name for camera_id, camera in config.cameras.items()}
        chosen = reports_of(config)
        made = ReportScheduler(chosen, stores[0], ReportSender(chosen, names=names, tz=BERLIN), names,
                               {camera_id: list(camera.zones) for camera_id, camera in config.cameras.items()}, BERLIN)
        if start:
            made.sender.start()
        return made

    yield scheduler
    for store in stores:
        store.close()


def seen(store, at: str, probabilities, camera="door", zone=None, track=[0]):
    """One person last seen at `at` (UTC), decided on `probabilities` (None: unassessable)."""
    track[0] += 1
    last = utc(at)
    store.record(camera, zone, person(track[0], probabilities or MASKED, first=last - 5, last=last,
                                      evidence=0 if probabilities is None else 4))


def sent_times(scheduler: ReportScheduler, start: str, end: str) -> list[float]:
    """Each instant from `start` to `end`, 30 s apart (the site's checks), at which a report went."""
    times, now = [], utc(start)
    while now < utc(end):
        if scheduler.check(now=now):
            times.append(now)
        now += 30
    return times


def test_a_time_the_clocks_skip_goes_at_the_jump_and_one_they_go_back_over_goes_once(make):
    """02:30 on 2026-03-29 does not happen in Berlin (02:00 CET is 03:00 CEST): the report goes at
    03:00 CEST. On 2026-10-25 02:30 happens twice (CEST, then CET): it goes at the first, once."""
    spring = make("[{urls: 'json://127.0.0.1:9/r', at: '02:30'}]")
    assert sent_times(spring, "2026-03-28T22:00Z", "2026-03-29T04:00Z") == [utc("2026-03-29T01:00Z")]
    (message,) = spring.check(now=utc("2026-03-30T00:30Z"))  # the next night: 02:30 CEST, as ever
    assert message.title == "Mask compliance Mon 2026-03-30, until 02:30"
    autumn = make("[{urls: 'json://127.0.0.1:9/r', at: '02:30'}]")  # the same report, months on
    autumn.sent.mark(autumn.reports[0].key, utc("2026-10-24T00:30Z"))  # sent the day before
    assert sent_times(autumn, "2026-10-24T22:00Z", "2026-10-25T04:00Z") == [utc("2026-10-25T00:30Z")]
    weekly = Schedule(datetime.strptime("02:30", "%H:%M").time(), weekday=6, tz=BERLIN)  # Sundays
    assert weekly.due_on(date(2026, 3, 29)).at == utc("2026-03-29T01:00Z")
    assert weekly.last_due(utc("2026-03-29T00:59Z")).day == date(2026, 3, 22)


def test_the_skipped_days_report_ends_at_the_jump(make):
    spring = make("[{urls: 'json://127.0.0.1:9/r', at: '02:30'}]")
    spring.check(now=utc("2026-03-28T22:00Z"))
    (message,) = spring.check(now=utc("2026-03-29T01:00:10Z"))
    assert message.title == "Mask compliance Sun 2026-03-29, until 03:00"  # one 03:00 that day: no offset
    assert message.body.splitlines()[-2] == ("Sun 2026-03-29 has 23 hours on the site's clock, not 24 (the clocks "
                                             "went forward): 1 hour less to count people in than another day.")


def test_a_report_until_a_time_the_clocks_go_back_over_says_which(make):
    """On 2026-10-25 in Berlin 02:30 is read twice: the report sent at the first said "until 02:30",
    either of two instants an hour apart; now with its offset, as the dashboard says such a time."""
    autumn = make("[{urls: 'json://127.0.0.1:9/r', at: '02:30'}]")
    autumn.check(now=utc("2026-10-24T22:00Z"))
    (message,) = autumn.check(now=utc("2026-10-25T00:30:10Z"))
    assert message.title == "Mask compliance Sun 2026-10-25, until 02:30 (UTC+02:00)"
    (message,) = autumn.check(now=utc("2026-10-26T01:30:10Z"))  # the next night's 02:30 is one: no offset
    assert message.title == "Mask compliance Mon 2026-10-26, until 02:30"


def test_a_report_missed_while_the_site_was_down_is_sent_once_when_it_starts_again(make, caplog):
    running = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    store = running.store
    assert running.check(now=utc("2026-09-21T15:59:40Z")) == []  # 17:59:40 CEST
    (on_time,) = running.check(now=utc("2026-09-21T16:00:10Z"))
    assert on_time.title == "Mask compliance Mon 2026-09-21, until 18:00" and "late" not in on_time.body
    assert running.check(now=utc("2026-09-21T16:00:40Z")) == []
    # Down from the 21st's evening to the 24th's morning: the 22nd's and the 23rd's reports were due.
    seen(store, "2026-09-23T08:00Z", BARE)  # 10:00 on the 23rd: in its report
    seen(store, "2026-09-23T17:00Z", MASKED)  # 19:00: after the report's time, not in it
    restarted = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    with caplog.at_level(logging.WARNING, logger="maskwatch.site.reports"):
        (late,) = restarted.check(now=utc("2026-09-24T05:00Z"))
    assert late.title == "Mask compliance Wed 2026-09-23, until 18:00"
    lines = late.body.splitlines()
    assert lines[0].startswith("Front door: 1 person: 0 with a mask, 1 without, 0 wearing it wrongly")
    assert "Sent late: it was due 2026-09-23 18:00:00 CEST, when the site was not running or could not " \
           "read its database." in lines
    assert "1 earlier daily report was not sent: the site was not running at its time." in lines
    assert [r.getMessage() for r in caplog.records] == [
        "report 0 (every day at 18:00): 1 earlier report missed while the site was not running; the last, "
        "due 2026-09-23 18:00:00 CEST, is sent now"]
    assert restarted.check(now=utc("2026-09-24T05:00:30Z")) == []
    assert make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]").check(now=utc("2026-09-24T06:00Z")) == []
    # The next day's goes at its time, not late.
    (next_day,) = restarted.check(now=utc("2026-09-24T16:00:20Z"))
    assert "late" not in next_day.body and "not sent" not in next_day.body
    # Down from the 24th's evening to the 28th's morning: the 27th's is sent, two more are counted.
    (after_days,) = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]").check(now=utc("2026-09-28T05:00Z"))
    assert after_days.title == "Mask compliance Sun 2026-09-27, until 18:00"
    assert "2 earlier daily reports were not sent: the site was not running at their time." in after_days.body


def test_a_new_report_owes_nothing_from_before_the_start_but_a_time_just_passed(make):
    assert make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]").check(now=utc("2026-09-21T16:30Z")) == []
    other = make("[{urls: 'json://127.0.0.1:9/r', at: '17:00'}]")  # changed: another report
    (just_passed,) = other.check(now=utc("2026-09-21T15:00:20Z"))  # started 20 s after 17:00
    assert "late" not in just_passed.body


def test_a_start_on_a_clock_at_1970_owes_nothing_once_ntp_sets_it(make, caplog):
    """A box with no real-time clock starts at 1970, just after the report's 18:00 on that clock
    (sent: a time just passed); NTP sets the clock. The report counted every day since 1970 as
    missed while the site was down ("399 earlier daily reports were not sent") and sent
    yesterday's as late; it owes nothing from before the start, and goes at its time."""
    clock = [utc("1970-01-01T17:00:10Z")]  # 18:00:10 in Berlin
    scheduler = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    scheduler.clock = lambda: clock[0]
    assert len(scheduler.check()) == 1
    clock[0] = utc("2026-09-24T05:00Z")  # NTP
    with caplog.at_level(logging.WARNING, logger="maskwatch.site.reports"):
        assert scheduler.check() == []
    step = utc("2026-09-24T05:00Z") - utc("1970-01-01T17:00:10Z")
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        f"scheduled reports: the clock was set +{step:.0f} s (or the machine slept)"]
    clock[0] = utc("2026-09-24T16:00:10Z")  # 18:00:10 CEST
    (on_time,) = scheduler.check()
    assert on_time.title == "Mask compliance Thu 2026-09-24, until 18:00"
    assert "late" not in on_time.body and "not sent" not in on_time.body


def test_a_report_sent_on_a_clock_set_ahead_goes_again_once_ntp_sets_it_back(make):
    """An RTC's garbage a week ahead at boot: the report went (a time just passed) and was recorded
    for that date; once NTP set the clock back it was not sent again until then, across restarts."""
    clock = [utc("2026-09-30T16:00:10Z")]
    scheduler = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    scheduler.clock = lambda: clock[0]
    assert len(scheduler.check()) == 1
    clock[0] = utc("2026-09-23T15:00Z")  # NTP: 17:00 CEST on the 23rd
    assert scheduler.check() == []
    clock[0] = utc("2026-09-23T16:00:10Z")
    (on_time,) = scheduler.check()
    assert on_time.title == "Mask compliance Wed 2026-09-23, until 18:00"
    assert "late" not in on_time.body and "not sent" not in on_time.body
    (next_day,) = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]").check(now=utc("2026-09-24T16:00:10Z"))
    assert "late" not in next_day.body and "not sent" not in next_day.body  # restarted: the database's record too


def test_a_report_sent_before_the_machine_slept_is_not_sent_again(make, monkeypatch):
    """A laptop's site slept 10 hours: the clock moved on, time.monotonic() did not (nor boot_clock()
    where there is no CLOCK_BOOTTIME). Taken for a clock set, the report sent before the sleep was
    put back to the start's day and sent twice."""
    import maskwatch.site.reports as reports

    steady, clock = [1000.0], [utc("2026-09-20T06:00Z")]
    monkeypatch.setattr(reports, "boot_clock", lambda: steady[0])
    scheduler = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    scheduler.clock = lambda: clock[0]
    assert scheduler.check() == []
    for now in range(int(utc("2026-09-20T06:00:30Z")), int(utc("2026-09-21T16:00:30Z")), 30):  # the checks
        steady[0] += 30
        clock[0] = now
        scheduler.check()
    steady[0] += 2 * 3600
    clock[0] = utc("2026-09-22T04:00Z")  # 2 hours more, 10 asleep: 06:00 CEST on the 22nd
    assert scheduler.check() == []


def test_a_report_due_while_the_machine_slept_is_sent_late_when_it_wakes(make, monkeypatch):
    """A site started at 09:00 with a new daily report, asleep from 10:00 to 20:00 (Linux: the
    wall clock and CLOCK_BOOTTIME move on, time.monotonic() does not). Taken for a clock set
    forward, the site's start moved to 19:00 and the 18:00 report was owed from before it: never
    sent. It goes late at the wake, as for a site that was down."""
    import maskwatch.site.reports as reports

    monotonic, boot, clock = [1000.0], [1000.0], [utc("2026-09-23T07:00Z")]
    monkeypatch.setattr(reports.time, "monotonic", lambda: monotonic[0])
    monkeypatch.setattr(reports, "boot_clock", lambda: boot[0], raising=False)
    scheduler = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    scheduler.clock = lambda: clock[0]
    for _ in range(120):  # awake from 09:00 to 10:00
        assert scheduler.check() == []
        monotonic[0], boot[0], clock[0] = monotonic[0] + 30, boot[0] + 30, clock[0] + 30
    boot[0], clock[0] = boot[0] + 10 * 3600, clock[0] + 10 * 3600  # asleep
    (late,) = scheduler.check()
    assert late.title == "Mask compliance Wed 2026-09-23, until 18:00" and "Sent late" in late.body


def stepped(make, monkeypatch, start: str):
    """A scheduler whose clock and time.monotonic() the test moves: tick(seconds) advances both
    every 30 s, as the site's checks; set_to(text) sets the clock alone (NTP, `date -s`)."""
    import maskwatch.site.reports as reports

    steady, clock, sent = [1000.0], [utc(start)], []
    monkeypatch.setattr(reports, "boot_clock", lambda: steady[0])
    scheduler = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    scheduler.clock = lambda: clock[0]

    def tick(seconds: float, every: float = 30.0) -> list:
        for _ in range(int(seconds // every)):
            steady[0] += every
            clock[0] += every
            sent.extend(scheduler.check())
        return sent

    def set_to(text: str) -> None:
        clock[0] = utc(text)

    sent.extend(scheduler.check())
    return scheduler, tick, set_to, sent


def test_a_report_sent_on_a_clock_minutes_ahead_is_not_sent_again_once_ntp_sets_it_back(make, monkeypatch):
    """A box's clock 5 minutes ahead (an RTC that drifted): the 18:00 report went at 17:55, then
    NTP set the clock back 5 minutes. Taken for a report recorded on a clock set ahead, it was put
    back and sent a second time at 18:00."""
    scheduler, tick, set_to, sent = stepped(make, monkeypatch, "2026-09-23T15:50Z")  # 17:50 CEST on the clock
    tick(11 * 60)  # to 18:01 on the clock
    assert [m.title for m in sent] == ["Mask compliance Wed 2026-09-23, until 18:00"]
    set_to("2026-09-23T15:56Z")  # NTP: 5 minutes back
    assert tick(3600)[1:] == []


def test_a_clock_set_a_week_ahead_and_back_sends_no_report_the_site_sent_before_twice(make, monkeypatch):
    """A site running on the right clock (the 22nd's report sent) had its clock set a week ahead
    by mistake (`date -s`), sent that day's report late, and was set right again: the records were
    put back to the site's start, and the 22nd's report went a second time, late."""
    scheduler, tick, set_to, sent = stepped(make, monkeypatch, "2026-09-15T04:00Z")
    tick(7 * 86400 + 13 * 3600, every=600)  # the 15th's to the 22nd's at 18:00
    assert len(sent) == 8
    set_to("2026-09-30T08:00Z")  # a week ahead, mistyped
    assert [m.title for m in tick(60)[8:]] == ["Mask compliance Tue 2026-09-29, until 18:00"]
    set_to("2026-09-23T08:05Z")  # set right
    assert tick(3600)[9:] == []
    set_to("2026-09-23T15:59Z")
    (on_time,) = tick(120)[9:]
    assert on_time.title == "Mask compliance Wed 2026-09-23, until 18:00"
    assert "late" not in on_time.body and "not sent" not in on_time.body


def test_a_report_put_back_after_a_clock_set_back_survives_a_database_that_fails_then(make, monkeypatch):
    """NTP set back a clock a week ahead while the database refused writes (a server restarting
    at boot): the check failed with the record taken off this process's list, and the next one,
    the database back, left the report recorded a week ahead: not sent until then."""
    scheduler, tick, set_to, sent = stepped(make, monkeypatch, "2026-09-30T16:00:10Z")
    assert len(sent) == 1
    engine = scheduler.store.engine
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TRIGGER refuse BEFORE UPDATE ON reports_sent "
                                   "BEGIN SELECT RAISE(ABORT, 'the database refuses writes'); END")
    set_to("2026-09-23T15:00Z")  # NTP: 17:00 CEST on the 23rd
    with pytest.raises(Exception, match="refuses writes"):
        scheduler.check()
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER refuse")
    (on_time,) = tick(3600)[1:]
    assert on_time.title == "Mask compliance Wed 2026-09-23, until 18:00"


def test_a_report_sent_on_a_clock_set_ahead_goes_again_after_a_restart(make, monkeypatch):
    """An RTC's garbage a week ahead at boot: the report went and was recorded for that date, and
    the site restarted (a crash, a new config) before NTP set the clock back. Only the process
    that recorded it put it back: the next was not sent until that date."""
    clock = [utc("2026-09-30T16:00:10Z")]
    first = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    first.clock = lambda: clock[0]
    assert len(first.check()) == 1
    _, tick, set_to, sent = stepped(make, monkeypatch, "2026-09-30T17:00Z")
    set_to("2026-09-23T15:00Z")  # NTP: 17:00 CEST on the 23rd
    assert sent == [] and tick(1800) == []
    set_to("2026-09-23T15:59Z")
    (on_time,) = tick(120)
    assert on_time.title == "Mask compliance Wed 2026-09-23, until 18:00"
    assert "late" not in on_time.body and "not sent" not in on_time.body


def test_a_boot_at_1970_still_sends_the_report_missed_while_the_box_was_off(make, monkeypatch):
    """The reports' records are far ahead of a clock at 1970 (no real-time clock, before NTP):
    they are no records made on a clock set ahead. Once NTP set the clock, the report due while
    the box was off goes, late, as for any site that was down."""
    clock = [utc("2026-09-22T16:00:10Z")]
    before = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    before.clock = lambda: clock[0]
    assert len(before.check()) == 1  # the 22nd's; then off until the 24th
    _, tick, set_to, sent = stepped(make, monkeypatch, "1970-01-01T10:00Z")
    assert sent == [] and tick(300) == []
    set_to("2026-09-24T08:00Z")  # NTP
    (late,) = tick(60)
    assert late.title == "Mask compliance Wed 2026-09-23, until 18:00" and "Sent late" in late.body


def test_two_processes_through_a_clock_set_a_week_ahead_and_back_send_nothing_twice(make, monkeypatch):
    """Two `run`s on one database (a rolling restart) through a clock set a week ahead and set
    right: the one that had not recorded the report sent ahead put it back to its own start, and
    sent the day before's report again (sent on time by the other), late."""
    import maskwatch.site.reports as reports

    steady, clock = [1000.0], [utc("2026-09-15T04:00Z")]
    monkeypatch.setattr(reports, "boot_clock", lambda: steady[0])
    one, other = (make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]") for _ in range(2))
    for scheduler in (one, other):
        scheduler.clock = lambda: clock[0]

    def tick(seconds: float, every: float = 30.0, order=(one, other)) -> list:
        sent = []
        for _ in range(int(seconds // every)):
            steady[0] += every
            clock[0] += every
            for scheduler in order:
                sent.extend(scheduler.check())
        return sent

    assert len(tick(7 * 86400 + 13 * 3600, every=600)) == 8  # the 15th's to the 22nd's, once each
    clock[0] = utc("2026-09-30T08:00Z")  # a week ahead, mistyped
    assert len(tick(60)) == 1  # the 29th's, late
    clock[0] = utc("2026-09-23T08:05Z")  # set right: the other process looks first
    assert tick(3600, order=(other, one)) == []
    clock[0] = utc("2026-09-23T15:59Z")
    (on_time,) = tick(120)
    assert on_time.title == "Mask compliance Wed 2026-09-23, until 18:00" and "late" not in on_time.body


def test_the_message_and_its_csv_reach_a_service(make, receiver):
    scheduler = make(f"[{{urls: '{json_url(receiver)}', at: '18:00'}}]", start=True)
    store = scheduler.store
    for probabilities in (MASKED, MASKED, MASKED, BARE):
        seen(store, "2026-09-21T07:00Z", probabilities, zone="queue")
    seen(store, "2026-09-21T12:00Z", WRONG)
    seen(store, "2026-09-21T12:00Z", UNDECIDED)
    seen(store, "2026-09-20T21:59Z", BARE)  # 23:59 the day before in Berlin: another day
    scheduler.check(now=utc("2026-09-21T15:00Z"))
    scheduler.check(now=utc("2026-09-21T16:00:10Z"))
    scheduler.sender.stop()
    assert scheduler.sender.stats.sent == 1
    (message,) = messages(receiver)
    figures = compliance_fields({"with_mask": 3, "without_mask": 1, "mask_weared_incorrect": 1})
    percent = {name: f"{round(100 * value, 2):g}" for name, value in figures.items()}
    assert message["title"] == "Mask compliance Mon 2026-09-21, until 18:00" and message["type"] == "info"
    assert message["message"].splitlines() == [
        f"Front door: 5 people: 3 with a mask, 1 without, 1 wearing it wrongly (1 more not judged); masked "
        f"{percent['compliance']} % (95 % interval {percent['compliance_low']}-{percent['compliance_high']} %)",
        "Till: no one seen", "Per day, camera and zone: maskwatch-2026-09-21-2026-09-21.csv"]
    (attached,) = message["attachments"]
    assert attached["filename"] == "maskwatch-2026-09-21-2026-09-21.csv" and attached["mimetype"] == "text/csv"
    table = base64.b64decode(attached["base64"]).decode()
    rows = list(csv.DictReader(io.StringIO(table)))
    assert tuple(rows[0]) == REPORT_COLUMNS
    assert [(r["date"], r["camera"], r["zone"], r["people"], r["with_mask"], r["unassessable"]) for r in rows] == [
        ("2026-09-21", "door", "", "1", "0", "1"), ("2026-09-21", "door", "queue", "4", "3", "0")]
    assert rows[1]["compliance"] == f"{compliance_fields({'with_mask': 3, 'without_mask': 1, 'mask_weared_incorrect': 0})['compliance']:.4f}"


def test_cameras_and_zones_pick_the_lines_and_rows(make, receiver):
    scheduler = make(f"[{{urls: '{json_url(receiver, 'queue')}', cameras: [door], zones: [queue]}},"
                     f" {{urls: '{json_url(receiver, 'till')}', cameras: [till]}}]", start=True)
    seen(scheduler.store, "2026-09-21T07:00Z", MASKED, zone="queue")
    seen(scheduler.store, "2026-09-21T07:00Z", BARE)  # door, outside the queue
    seen(scheduler.store, "2026-09-21T07:00Z", BARE, camera="till")
    scheduler.check(now=utc("2026-09-21T15:00Z"))
    scheduler.check(now=utc("2026-09-21T16:00:10Z"))
    scheduler.sender.stop()
    queue, till = sorted(messages(receiver), key=lambda m: m["message"])
    assert queue["message"].splitlines()[0].startswith("Front door, queue: 1 person: 1 with a mask, 0 without")
    assert len(queue["message"].splitlines()) == 2
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(queue["attachments"][0]["base64"]).decode())))
    assert [(r["camera"], r["zone"]) for r in rows] == [("door", "queue")]
    assert till["message"].splitlines()[0].startswith("Till: 1 person: 0 with a mask, 1 without")
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(till["attachments"][0]["base64"]).decode())))
    assert [(r["camera"], r["zone"]) for r in rows] == [("till", "")]


def test_a_weekly_report_is_the_seven_days_before_its_day(make):
    scheduler = make("[{urls: 'json://127.0.0.1:9/r', every: week, at: '07:00'}]")  # Mondays
    seen(scheduler.store, "2026-09-20T12:00Z", BARE)  # Sunday before the week: not in it
    seen(scheduler.store, "2026-09-21T12:00Z", MASKED)  # Monday 21st
    seen(scheduler.store, "2026-09-27T21:30Z", MASKED)  # Sunday 27th, 23:30 in Berlin
    seen(scheduler.store, "2026-09-27T22:30Z", BARE)  # Monday 28th, 00:30 in Berlin: the next week's
    assert scheduler.check(now=utc("2026-09-27T12:00Z")) == []
    (message,) = scheduler.check(now=utc("2026-09-28T05:00:10Z"))
    assert message.title == "Mask compliance Mon 2026-09-21 to Sun 2026-09-27"
    assert message.body.splitlines()[0].startswith("Front door: 2 people: 2 with a mask, 0 without")
    assert message.document[0] == "maskwatch-2026-09-21-2026-09-27.csv"
    assert [row.split(",")[0] for row in message.document[1].splitlines()[1:]] == ["2026-09-21", "2026-09-27"]


@pytest.mark.parametrize("reports, expected", [
    ("[{urls: 'json://h/r', at: 18:00}]",
     "field 'reports.0.at': YAML reads an unquoted time as a number (1080); write it in quotes: at: \"18:00\""),
    ("[{urls: 'json://h/r', at: '24:00'}]", "field 'reports.0.at': a time written \"HH:MM\" from 00:00 to 23:59"),
    ("[{urls: 'json://h/r', every: month}]", "field 'reports.0.every': Input should be 'day' or 'week'"),
    ("[{urls: 'json://h/r', every: week, day: friday}]", "field 'reports.0.day': Input should be 'mon', 'tue'"),
    ("[{urls: 'json://h/r', day: fri}]", "field 'reports.0': day: fri is the day a weekly report is sent"),
    ("[{urls: 'json://h/r', covers: yesterday}]", "field 'reports.0.covers': Input should be 'current' or 'previous'"),
    ("[{urls: 'json://h/r', at: '0:00'}]", "field 'reports.0': at: \"00:00\" ends a daily report at the midnight it "
                                          "starts, with no one in it; for the day before write covers: previous"),
    ("[{urls: 'json://h/r', cameras: [nope]}]", "field 'reports.0.cameras': no such cameras ['nope']; cameras: door, till"),
    ("[{urls: 'json://h/r', zones: [dor]}]", "field 'reports.0.zones': no camera has the zones ['dor']; zones: queue"),
    ("[{urls: 'json://h/r', cameras: [till], zones: [queue]}]",
     "field 'reports.0.zones': the cameras named have no zone ['queue'] (another camera has); their zones: none"),
    ("[{urls: []}]", "field 'reports.0.urls': List should have at least 1 item"),
    (f"[{{urls: 'tgram://{SECRET}/'}}]", "field 'reports.0.urls.0': not a Telegram URL apprise can use"),
    ("[{urls: 'json://h/r', hour: 18}]", "field 'reports.0.hour': unknown setting (a typo?)"),
])
def test_a_wrong_entry_stops_the_start_with_one_line_naming_the_field(tmp_path, reports, expected):
    with pytest.raises(SiteConfigError) as err:
        load_site_config(site_file(tmp_path, reports), environ={})
    (problem,) = err.value.problems
    assert problem.startswith(expected) and SECRET not in problem, problem


def test_run_check_and_report_list_the_reports_and_never_a_secret(tmp_path, receiver, monkeypatch):
    port = receiver.url.split(":")[2].split("/")[0]
    monkeypatch.setenv("REPORT_URL", f"json://maskwatch:{SECRET}@127.0.0.1:{port}/{SECRET}path")
    path = site_file(tmp_path, "[{urls: '${REPORT_URL}', every: week, day: fri, at: '7:05', zones: [queue]},"
                               " {urls: ['ntfy://ntfy.sh/" + SECRET + "']}]")
    checked = CliRunner().invoke(app, ["run", "--config", str(path), "--check"])
    assert checked.exit_code == 0, checked.output
    assert checked.output.splitlines()[-3:] == [
        "  reports (in Europe/Berlin):", f"    0: every fri at 07:05, zones queue to json://127.0.0.1:{port}/…",
        "    1: every day at 18:00 to ntfy://ntfy.sh/…"]
    printed = CliRunner().invoke(app, ["report", "--config", str(path)])
    assert printed.exit_code == 0, printed.output
    assert "Front door, queue: no one seen" in printed.output and "Till: no one seen" in printed.output
    with RootLog() as log:
        sent = CliRunner().invoke(app, ["report", "--config", str(path), "--send", "0"])
    assert sent.exit_code == 0, sent.output
    assert sent.output.splitlines()[-1] == f"report 0 sent to json://127.0.0.1:{port}/…"
    (message,) = messages(receiver)
    assert message["title"].startswith("Mask compliance ") and " to " in message["title"]
    everything = checked.output + printed.output + sent.output + " ".join(r.getMessage() for r in log.records)
    assert SECRET not in everything
    wrong = CliRunner().invoke(app, ["report", "--config", str(path), "--send", "2"])
    assert wrong.exit_code == 1 and "--send is the number of a report in `reports:`, 0 to 1; got 2" in wrong.output


def test_a_service_that_fails_is_said_without_its_secret(tmp_path):
    failing = Receiver(failures=100)
    port = failing.url.split(":")[2].split("/")[0]
    path = site_file(tmp_path, f"[{{urls: 'json://maskwatch:{SECRET}@127.0.0.1:{port}/{SECRET}path'}}]")
    try:
        with RootLog() as log:
            result = CliRunner().invoke(app, ["report", "--config", str(path), "--send", "0"])
    finally:
        failing.close()
    assert result.exit_code == 1 and failing.attempts == 1  # one try: a wrong setup is said at once
    assert "1 of 1 services did not take it (last: json://127.0.0.1:" in result.output
    assert SECRET not in result.output + " ".join(r.getMessage() for r in log.records)


def test_a_site_sends_its_reports_and_counts_them(tmp_path, receiver):
    """The site makes the scheduler from its file, sends on its own thread, flushes at the stop,
    and /metrics counts the messages."""
    from maskwatch import Detector
    from maskwatch.detection.detector import WEIGHTS
    from maskwatch.site.metrics import SiteCollector
    from maskwatch.site.runner import Site

    (tmp_path / "site.yaml").write_text(
        "cameras:\n  door: {name: Front door, source: 'rtsp://127.0.0.1:1/none'}\ntimezone: Europe/Berlin\n"
        f"reports: [{{urls: '{json_url(receiver)}', at: '18:00'}}]\n")
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), Detector.load(config=WEIGHTS / "centerface.json"))
    try:
        seen(site.store, "2026-09-21T07:00Z", MASKED)
        site.reports.sender.start()
        site.reports.check(now=utc("2026-09-21T15:00Z"))
        site.reports.check(now=utc("2026-09-21T16:00:10Z"))
    finally:
        site.stop()
    (message,) = messages(receiver)
    assert message["message"].startswith("Front door: 1 person: 1 with a mask")
    series = {family.name: family.samples for family in SiteCollector(site).collect()}
    assert [s.value for s in series["maskwatch_report_messages"] if s.labels == {"outcome": "sent"}] == [1]


def test_the_documented_entries_load(tmp_path):
    """docs/site.md's example and the example site's commented entry, uncommented."""
    from tests.conftest import ROOT

    environ = {"MAIL_PASSWORD": SECRET, "TEAMS_WORKFLOW_URL": "https://prod-00.westus.logic.azure.com:443/workflows/0123456789abcdef/triggers/"
                                     f"manual/paths/invoke?api-version=2016-06-01&sig={SECRET}",
               "CAM_PASSWORD": "x", "WEBHOOK_SECRET": "0123456789",
               "SLACK_WEBHOOK_URL": f"https://hooks.slack.com/services/T0123/B0456/{SECRET}"}
    docs = (ROOT / "docs" / "site.md").read_text()
    (section,) = [part for part in docs.split("\n## ") if part.startswith("Scheduled reports")]
    (entries, *_) = section.split("```yaml\n")[1].split("```")
    path = tmp_path / "site.yaml"
    path.write_text("cameras:\n  entrance: {source: webcam:0, zones: {door: [[0, 0], [1, 0], [1, 1]]}}\n" + entries)
    daily, morning, weekly = load_site_config(path, environ=environ).reports
    assert (daily.every, daily.at, weekly.every, weekly.day, weekly.at) == ("day", "18:00", "week", "mon", "07:00")
    assert (morning.at, morning.previous_day) == ("07:00", True)
    assert weekly.cameras == ["entrance"] and weekly.zones == ["door"]
    lines = (ROOT / "src" / "maskwatch" / "examples" / "site.yaml").read_text().splitlines()
    first = lines.index(next(line for line in lines if line.startswith("# reports:")))
    last = next(i for i in range(first, len(lines)) if not lines[i].startswith("#"))
    path.write_text("\n".join(lines[:first] + [line[2:] for line in lines[first:last]] + lines[last:]))
    daily, weekly = load_site_config(path, environ=environ).reports
    assert daily.at == "18:00" and weekly.every == "week" and weekly.zones == ["door"]


def test_every_service_the_docs_name_is_one_apprise_has():
    """docs/site.md named msteams://, which apprise 2.3 no longer has (Teams' connectors were
    retired for its Workflows app): a user following it was refused at the start."""
    import re

    from maskwatch.site.notify import _services
    from maskwatch.video.sources import STREAM_PREFIXES
    from tests.conftest import ROOT

    named = set(re.findall(r"`([a-z]+)://`", (ROOT / "docs" / "site.md").read_text()))
    assert {"slack", "workflows", "mailto", "ntfy"} <= named
    streams = {prefix.removesuffix("://") for prefix in STREAM_PREFIXES}  # a camera's URL, not a service
    assert not {scheme for scheme in named if scheme not in _services() and scheme not in streams}


def test_what_a_report_names_is_checked_with_the_files_other_fields(tmp_path):
    """A camera with a bad field and a report naming a camera and zone that do not exist: all said at once."""
    path = tmp_path / "site.yaml"
    path.write_text("cameras:\n  door: {source: webcam:0, fps: 0}\n"
                    "reports: [{urls: 'json://h/r', at: '25:00', cameras: [till], zones: [queue]}]\n")
    with pytest.raises(SiteConfigError) as err:
        load_site_config(path, environ={})
    assert [p.split(":")[0] for p in err.value.problems] == [
        "camera 'door', field 'fps'", "field 'reports.0.at'", "field 'reports.0.cameras'", "field 'reports.0.zones'"]


def test_two_sites_on_one_database_send_a_report_once(tmp_path):
    """Two processes running the same site on one database (a rolling restart, a second `run` with
    another port): both had read when each report last went before its time, and both sent it."""
    path = site_file(tmp_path, "[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    config = load_site_config(path, environ={})
    names = {camera_id: camera.name for camera_id, camera in config.cameras.items()}
    stores = [EventStore(config.storage.database, config.storage.snapshots, retention_days=10_000) for _ in range(2)]
    try:
        first, second = (ReportScheduler(reports_of(config), store, ReportSender(reports_of(config), names=names),
                                         names, {}, BERLIN) for store in stores)
        assert first.check(now=utc("2026-09-21T15:50Z")) == second.check(now=utc("2026-09-21T15:50Z")) == []
        assert len(first.check(now=utc("2026-09-21T16:00:10Z"))) == 1
        assert second.check(now=utc("2026-09-21T16:00:20Z")) == []
        assert second.check(now=utc("2026-09-22T16:00:05Z")) and first.check(now=utc("2026-09-22T16:00:15Z")) == []
    finally:
        for store in stores:
            store.close()


def test_a_daily_report_sent_in_the_morning_covers_the_whole_day_before(make, tmp_path):
    """`covers: previous`: at 07:00 the day before, midnight to midnight in the site's timezone,
    across the night the clocks go back (25 hours in Berlin: 2026-10-25)."""
    scheduler = make("[{urls: 'json://127.0.0.1:9/r', at: '07:00', covers: previous}]")
    seen(scheduler.store, "2026-10-24T21:30Z", BARE)  # 23:30 CEST on the 24th: the day before
    seen(scheduler.store, "2026-10-24T22:30Z", MASKED)  # 00:30 CEST on the 25th
    seen(scheduler.store, "2026-10-25T22:30Z", MASKED)  # 23:30 CET on the 25th: its 25th hour
    seen(scheduler.store, "2026-10-25T23:30Z", BARE)  # 00:30 CET on the 26th: the next day's
    seen(scheduler.store, "2026-10-26T05:30Z", BARE)  # 06:30 on the 26th, before the report: not in it
    assert scheduler.check(now=utc("2026-10-26T05:50Z")) == []
    (message,) = scheduler.check(now=utc("2026-10-26T06:00:10Z"))
    assert message.title == "Mask compliance Sun 2026-10-25"
    assert message.body.splitlines()[0].startswith("Front door: 2 people: 2 with a mask, 0 without")
    # 25 hours of people beside other days' 24, said in the text and in report.csv's last column
    assert ("Sun 2026-10-25 has 25 hours on the site's clock, not 24 (the clocks went back): 1 hour more to "
            "count people in than another day.") in message.body.splitlines()
    assert message.document[0] == "maskwatch-2026-10-25-2026-10-25.csv"
    assert [row.split(",")[:4] + row.split(",")[-1:] for row in message.document[1].splitlines()[1:]] == [
        ["2026-10-25", "door", "", "2", "25"]]
    assert scheduler.reports[0].name == "report 0 (every day at 07:00, the previous day)"
    (entry,) = load_site_config(tmp_path / "site.yaml", environ={}).reports
    assert entry.schedule() == "every day at 07:00, the previous day"  # as run --check lists it
    (today,) = reports_of(load_site_config(site_file(tmp_path, "[{urls: 'json://h/r', at: '07:00'}]"), environ={}))
    assert today.key != scheduler.reports[0].key  # another report: it owes nothing from before the change


def test_a_weekly_report_covers_the_previous_week_written_or_not(tmp_path):
    written, unwritten = (load_site_config(site_file(tmp_path, f"[{{urls: 'json://h/r', every: week{covers}}}]"),
                                           environ={}) for covers in (", covers: previous", ""))
    assert reports_of(written)[0].key == reports_of(unwritten)[0].key
    with pytest.raises(SiteConfigError) as err:
        load_site_config(site_file(tmp_path, "[{urls: 'json://h/r', every: week, covers: current}]"), environ={})
    assert err.value.problems == ["field 'reports.0': covers: current is a daily report's (its day up to `at`); a "
                                  "weekly one covers the 7 days before the day it is sent: remove it, or write "
                                  "covers: previous"]


def test_a_report_is_report_csv_for_its_period_with_the_cameras_not_running(tmp_path):
    """The same week's (and day's) report.csv from the site's API, to the byte: the running door,
    till (enabled: false) and old (removed from the file), whose history is still stored; each
    line's figures are its camera's rows summed, as compliance_fields computes them."""
    from fastapi.testclient import TestClient

    from maskwatch.serving.app import create_app
    from tests.test_site_history import make_site

    site, detector = make_site(tmp_path, users=False)
    path = tmp_path / "site.yaml"
    path.write_text(path.read_text() + "reports: [{urls: 'json://h/r', every: week, at: '07:00'},"
                                       " {urls: 'json://h/r', at: '07:00', covers: previous, cameras: [till]}]\n")
    config = load_site_config(path, environ={})
    weekly, daily = reports_of(config)
    names = {camera_id: camera.name for camera_id, camera in config.cameras.items()}
    scheduler = ReportScheduler([weekly, daily], site.store, ReportSender([weekly, daily], names=names), names,
                                {"door": ["queue"]}, BERLIN)
    client = TestClient(create_app(detector, site=site), base_url="http://127.0.0.1")  # no lifespan: no camera
    try:
        scheduler.check(now=utc("2026-09-23T04:50Z"))
        (day,) = scheduler.check(now=utc("2026-09-23T05:00:10Z"))  # 07:00 on the 23rd: the 22nd
        sent = scheduler.check(now=utc("2026-09-28T05:00:10Z"))  # Monday 07:00: the 21st to the 27th
        (week,) = [message for message in sent if message.title.endswith(" to Sun 2026-09-27")]
        for message, period in ((week, {"from": "2026-09-21", "to": "2026-09-27"}),
                                (day, {"from": "2026-09-22", "to": "2026-09-22"})):
            answer = client.get("/v1/report.csv", params=period)
            assert message.document[0] in answer.headers["content-disposition"]
            expected = [row for row in answer.text.splitlines()[1:] if message is week or ",till," in row]
            assert message.document[1].splitlines() == answer.text.splitlines()[:1] + expected
        rows = list(csv.DictReader(io.StringIO(client.get("/v1/report.csv", params={"from": "2026-09-21",
                                                                                     "to": "2026-09-27"}).text)))
        for line in week.body.splitlines()[:3]:
            camera = {"Front door": "door"}.get(line.split(":")[0], line.split(":")[0])
            total = {label: sum(int(r[label]) for r in rows if r["camera"] == camera)
                     for label in ("with_mask", "without_mask", "mask_weared_incorrect")}
            figures = {name: f"{round(100 * value, 2):g}" for name, value in compliance_fields(total).items()}
            assert line.endswith(f"masked {figures['compliance']} % (95 % interval {figures['compliance_low']}-"
                                 f"{figures['compliance_high']} %)"), line
        assert [line.split(":")[0] for line in week.body.splitlines()[:3]] == ["Front door", "old", "till"]
        assert day.title == "Mask compliance Tue 2026-09-22" and day.body.startswith("till: 2 people")
    finally:
        site.store.close()


def test_report_csv_on_the_command_line_is_the_apis_with_its_access_log_row(tmp_path):
    """A manager or a cron job on the server got report.csv only through the API and a token:
    `maskwatch report --csv` prints the API's answer to the byte (a site with no `reports:`), and the
    access log says who exported it, as for the API's."""
    import getpass

    from fastapi.testclient import TestClient

    from maskwatch.security.store import AuthStore
    from maskwatch.serving.app import create_app
    from tests.test_site_history import make_site

    site, detector = make_site(tmp_path, users=False)
    config, runner = str(tmp_path / "site.yaml"), CliRunner()
    client = TestClient(create_app(detector, site=site), base_url="http://127.0.0.1")  # no lifespan: no camera
    try:
        for days in (["--from", "2026-09-21", "--to", "2026-09-27"], ["--to", "2026-09-23"]):
            printed = runner.invoke(app, ["report", "--csv", *days, "-c", config])
            answer = client.get("/v1/report.csv", params=dict(zip(("from", "to") if len(days) == 4 else ("to",),
                                                                  days[1::2])))
            assert printed.exit_code == 0 and printed.stdout == answer.text, printed.output
            assert len(answer.text.splitlines()) > 2 and ",old,lobby," in answer.text
    finally:
        site.store.close()
    auth = AuthStore(str(tmp_path / "site.db"))
    try:
        rows = [(row["user"], row["client"], row["target"]) for row in auth.access_log(action="report")]
    finally:
        auth.close()
    assert rows == [(f"cli:{getpass.getuser()}", "local", f"report.csv?from={first}&to={last}")
                    for first, last in (("2026-09-17", "2026-09-23"), ("2026-09-21", "2026-09-27"))]
    for args, said in ((["--csv", "--from", "21.9.2026"], "--from must be a date written YYYY-MM-DD; got '21.9.2026'"),
                       (["--csv", "--from", "2026-09-28", "--to", "2026-09-27"],
                        "--from (2026-09-28) is after --to (2026-09-27)"),
                       (["--from", "2026-09-21"], "--from is a day of --csv's report.csv: add --csv")):
        refused = runner.invoke(app, ["report", *args, "-c", config])
        assert refused.exit_code == 1 and refused.output == f"error: {said}\n", refused.output


def test_reports_on_postgresql_are_kept_and_sent_once_by_two_processes(postgres, tmp_path):  # noqa: F811
    """The site on PostgreSQL: reports_sent made by its migration, two processes (each its own
    engine) send a report once, a restart reads when it last went and owes the one it missed."""
    from sqlalchemy import inspect

    path = site_file(tmp_path, "[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    path.write_text(path.read_text() + f"storage: {{database: '{postgres.url}'}}\n")
    config = load_site_config(path, environ={})
    names = {camera_id: camera.name for camera_id, camera in config.cameras.items()}

    def scheduler(store):
        return ReportScheduler(reports_of(config), store, ReportSender(reports_of(config), names=names), names, {},
                               BERLIN)

    stores = [EventStore(postgres.url, tmp_path / "snaps", retention_days=10_000) for _ in range(3)]
    try:
        seen(stores[0], "2026-09-21T07:00Z", MASKED)
        first, second = scheduler(stores[0]), scheduler(stores[1])
        assert {"reports_sent", "reports_schema_version"} <= set(inspect(stores[0].engine).get_table_names())
        assert first.check(now=utc("2026-09-21T15:50Z")) == second.check(now=utc("2026-09-21T15:50Z")) == []
        sent = second.check(now=utc("2026-09-21T16:00:05Z")) + first.check(now=utc("2026-09-21T16:00:10Z"))
        assert [m.body.splitlines()[0][:30] for m in sent] == ["Front door: 1 person: 1 with a"]
        (late,) = scheduler(stores[2]).check(now=utc("2026-09-23T05:00Z"))  # down on the 22nd at 18:00
        assert late.title == "Mask compliance Tue 2026-09-22, until 18:00" and "Sent late" in late.body
        assert first.sent.read() == {first.reports[0].key: utc("2026-09-22T16:00Z")}
    finally:
        for store in stores:
            store.close()


def test_a_sites_timezone_changed_makes_its_reports_new_ones(tmp_path):
    """Europe/Berlin changed to Australia/Sydney at 11:00 in Berlin (19:00 in Sydney, after its
    18:00): the site sent at once a report 'late, when the site was not running', which was running.
    Another timezone is another schedule, as another `at`: nothing owed from before the start."""
    def scheduler(zone: str, store=None) -> ReportScheduler:
        path = site_file(tmp_path, "[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
        path.write_text(path.read_text().replace("Europe/Berlin", zone))
        config = load_site_config(path, environ={})
        chosen = reports_of(config)
        store = store or EventStore(config.storage.database, retention_days=10_000)
        return ReportScheduler(chosen, store, ReportSender(chosen), {"door": "Front door"}, {}, config.tz())

    berlin = scheduler("Europe/Berlin")
    try:
        berlin.check(now=utc("2026-09-21T15:50Z"))
        assert berlin.check(now=utc("2026-09-21T16:00:10Z"))
        sydney = scheduler("Australia/Sydney", berlin.store)
        assert sydney.check(now=utc("2026-09-22T09:00Z")) == []
        (on_time,) = sydney.check(now=utc("2026-09-23T08:00:10Z"))  # 18:00:10 AEST
        assert on_time.title == "Mask compliance Wed 2026-09-23, until 18:00" and "late" not in on_time.body
        assert scheduler("Australia/Sydney", berlin.store).check(now=utc("2026-09-23T08:05Z")) == []  # a restart
    finally:
        berlin.store.close()


def test_the_schedule_across_sydneys_clock_changes():
    """The southern hemisphere: forward on 2026-10-04 (02:00 AEST is 03:00 AEDT), back on
    2026-04-05 (03:00 AEDT is 02:00 AEST); a previous-day report's day is 23 or 25 hours long."""
    from zoneinfo import ZoneInfo

    from maskwatch.site.reports import Report

    sydney = ZoneInfo("Australia/Sydney")
    daily = Schedule(datetime.strptime("02:30", "%H:%M").time(), tz=sydney)
    assert daily.due_on(date(2026, 10, 4)).at == utc("2026-10-03T16:00Z")  # at the jump, 03:00 AEDT
    assert daily.due_on(date(2026, 4, 5)).at == utc("2026-04-04T15:30Z")  # the first 02:30, AEDT
    assert [due.at for due in daily.dues_between(utc("2026-04-03T16:00Z"), utc("2026-04-06T17:00Z"))] == [
        utc("2026-04-04T15:30Z"), utc("2026-04-05T16:30Z"), utc("2026-04-06T16:30Z")]
    morning = Report(0, "day", Schedule(datetime.strptime("07:00", "%H:%M").time(), tz=sydney), ("json://h/r",),
                     previous_day=True)
    for sent_on, hours in ((date(2026, 4, 6), 25), (date(2026, 10, 5), 23)):
        first, last, end = morning.period(morning.schedule.due_on(sent_on), 0)
        start = datetime(first.year, first.month, first.day, tzinfo=sydney).timestamp()
        assert first == last == sent_on.replace(day=sent_on.day - 1) and end - start == hours * 3600


def test_a_large_sites_report_is_split_to_fit_each_service(tmp_path, receiver):
    """100 cameras of 3 zones: 300 lines, 40,000 characters. apprise sent each service the whole
    text as one message, past its limit (Telegram takes 4,096, ntfy 7,800, json:// 32,768): the
    service refused it and the report never came. It is now split in pieces within the service's
    limit, in order, the CSV attached once; an `overflow=` the URL names stands."""
    from dataclasses import replace

    import apprise

    cameras = "".join(f"  cam{n:03d}: {{name: Camera {n:03d}, source: 'webcam:{n}', zones: {{entrance: "
                      "[[0, 0], [1, 0], [1, 1]], queue: [[0, 0], [1, 0], [0, 1]], till: [[0, 1], [1, 0], [1, 1]]}}\n"
                      for n in range(100))
    chosen_by_url = Receiver()
    path = tmp_path / "site.yaml"
    path.write_text(f"cameras:\n{cameras}timezone: Europe/Berlin\nreports: [{{urls: ['{json_url(receiver)}', "
                    f"'{json_url(chosen_by_url)}?overflow=upstream'], zones: [entrance, queue, till]}}]\n")
    config = load_site_config(path, environ={})
    store = EventStore(config.storage.database, retention_days=10_000)
    try:
        for n in range(100):
            for zone in ("entrance", "queue", "till"):
                seen(store, "2026-09-21T07:00Z", MASKED, camera=f"cam{n:03d}", zone=zone)
        chosen = reports_of(config)
        names = {camera_id: camera.name for camera_id, camera in config.cameras.items()}
        scheduler = ReportScheduler(chosen, store, ReportSender(chosen, names=names), names,
                                    {camera_id: list(camera.zones) for camera_id, camera in config.cameras.items()},
                                    BERLIN)
        scheduler.sender.start()
        scheduler.check(now=utc("2026-09-21T15:00Z"))
        (made,) = scheduler.check(now=utc("2026-09-21T16:00:10Z"))
        scheduler.sender.stop()
        (telegram,) = ReportSender([replace(chosen[0], urls=("tgram://123456789:abcdefgh/12345",))])._senders[0]
    finally:
        store.close()
        chosen_by_url.close()
    assert len(made.body) > 40_000 and telegram.overflow_mode == apprise.common.OverflowMode.SPLIT
    assert all(len(piece["body"]) <= 4096 for piece in telegram._apply_overflow(made.body, made.title))
    split, (whole,) = messages(receiver), messages(chosen_by_url)
    assert len(split) == 2 and all(len(m["message"]) <= 32_768 for m in split)
    assert "\n".join(m["message"] for m in split).split() == made.body.split() == whole["message"].split()
    assert [len(m.get("attachments") or []) for m in split] == [1, 0] and len(whole["attachments"]) == 1


def test_a_report_the_database_could_not_mark_is_sent_when_it_can(make):
    """The database refuses the mark (here its table gone a while): nothing is sent, and the report
    goes at the next check that can mark it, not never."""
    from sqlalchemy.exc import OperationalError

    from maskwatch.site.reports import reports_sent

    scheduler = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    assert scheduler.check(now=utc("2026-09-21T15:50Z")) == []
    reports_sent.drop(scheduler.store.engine)
    with pytest.raises(OperationalError):
        scheduler.check(now=utc("2026-09-21T16:00:10Z"))
    reports_sent.create(scheduler.store.engine)
    (late,) = scheduler.check(now=utc("2026-09-21T16:00:40Z"))
    assert late.title == "Mask compliance Mon 2026-09-21, until 18:00"


def test_a_report_not_delivered_is_said_to_be_a_report_in_the_log(tmp_path, caplog):
    """`report --send 0` to a mail server that refused the connection, and the site's own reports,
    logged "report mailtos://…: alert not delivered after 1 try (...); until one goes through, each
    alert gets one try": the reader looked for an alert that was never sent."""
    from maskwatch.site.notify import Message
    from tests.rtsp import refused_port

    path = site_file(tmp_path, f"[{{urls: 'json://127.0.0.1:{refused_port()}/r', retries: 0, timeout: 5}}]")
    (report,) = reports_of(load_site_config(path, environ={}))
    sender = ReportSender([report])
    caplog.set_level(logging.WARNING, logger="maskwatch.site.alerts")
    sender.start()
    sender.send(report, Message("Mask compliance", "door: no one seen", warning=False))
    sender.stop()
    (said,) = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.alerts"]
    assert said.startswith("report json://127.0.0.1:") and ": report not delivered after 1 try (" in said, said
    assert said.endswith("; until one goes through, each report gets one try") and "alert" not in said


def test_a_sent_time_written_by_hand_as_text_stops_no_report(make, caplog):
    """A text in reports_sent.due (SQLite keeps it) made each check fail ("'>=' not supported between
    str and float"), logged once as "scheduled reports cannot be made", and no report was sent again."""
    from sqlalchemy import text

    scheduler = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    assert scheduler.check(now=utc("2026-09-21T15:50Z")) == []
    assert len(scheduler.check(now=utc("2026-09-21T16:00:10Z"))) == 1
    with scheduler.store.engine.begin() as connection:
        connection.execute(text("UPDATE reports_sent SET due = 'garbage'"))
    caplog.set_level(logging.WARNING, logger="maskwatch.site.reports")
    restarted = make("[{urls: 'json://127.0.0.1:9/r', at: '18:00'}]")
    assert [m.title for m in restarted.check(now=utc("2026-09-22T16:00:10Z"))] == ["Mask compliance Tue 2026-09-22, until 18:00"]
    (said,) = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.reports"]
    # Named as the rest of the log names it: the key stored (a hash) matched nothing in the file
    assert said.startswith("reports_sent: the last due time of report 0 (every day at 18:00) was 'garbage', no time"), said


def test_a_report_left_at_the_stop_is_said_to_be_a_report_in_the_log(tmp_path, caplog):
    """A site stopped with a report still queued (its mail server slow or down) logged "report …: 1
    alerts not delivered by the stop": one line of the not-delivered words the report's fix missed."""
    from maskwatch.site.notify import Message

    path = site_file(tmp_path, "[{urls: 'json://127.0.0.1:9/r', retries: 0, timeout: 5}]")
    (report,) = reports_of(load_site_config(path, environ={}))
    sender = ReportSender([report])  # not started: the report stays queued, as behind a slow receiver
    caplog.set_level(logging.WARNING, logger="maskwatch.site.alerts")
    sender.send(report, Message("Mask compliance", "door: no one seen", warning=False))
    sender.stop(timeout=0)
    (said,) = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.alerts"]
    assert said.startswith("report json://127.0.0.1:9/") and said.endswith(
        ": 1 report not delivered by the stop (still queued)"), said
