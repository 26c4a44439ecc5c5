"""`maskwatch detect`: the whole loop, frames in, labelled faces and annotated outputs out.

    processor = FrameProcessor(detector, FaceTracker(), detect_every)
    for frame in read_frames(source):          # or live_frames(url): reconnects forever
        analyse(processor, frame, sinks)       # video/loop.py: the loop body every loop runs
    finish(processor, sinks)                   # summary.json is a sink too
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from maskwatch.atomic import OutputError, make_output_folder, only_writer, os_error_text, write_text
from maskwatch.progress import progress_bar
from maskwatch.video.camera_motion import CameraMotion
from maskwatch.video.cameras import live_frames
from maskwatch.video.loop import analyse, end_tracks, finish
from maskwatch.video.night import grey_words
from maskwatch.video.process import FrameProcessor
from maskwatch.video.resume import PHOTOS, RUN_RECORD, Resumed, earlier_run, run_identity, stopped_part_way
from maskwatch.video.sinks import (CallbackSink, JsonLinesSink, LineEcho, LinesFile, MediaSink, Sink, SummarySink,
                                  media_path)
from maskwatch.video.sources import (IMAGE_SUFFIXES, UNREAD_PHOTO_SUFFIXES, UNREAD_PHOTOS, VIDEO_SUFFIXES, WRITTEN,
                                     SourceError, SourceInfo, describe_source, folder_files, photo_files,
                                     photo_subfolders, read_frames, redact_source, written_before, written_files,
                                     written_text, written_warning)
from maskwatch.video.tracker import FaceTracker

if TYPE_CHECKING:  # for the annotations only
    from maskwatch.detection.detector import FaceFinder
    from maskwatch.faces import Face
    from maskwatch.video.sources import Frame

# On video, detect on every second frame and carry tracked faces over the one between: twice
# the frame rate, and at 25 FPS a face moves a few pixels in 40 ms (BENCHMARKS.md, FPS).
DEFAULT_DETECT_EVERY = 2


@dataclass(frozen=True)
class DetectOptions:
    """What decides a detect run's outputs besides the source and the models, as detect-run.json
    records them: one value the CLI, batch's actors (ScoreOptions) and the tests hand over whole,
    rather than four flags passed by hand through each layer.

    detect_every: on video, run the detector on every n-th frame only and carry the tracked
    faces over the frames between (their JSON lines say "detected": false). Faster, and on
    25 FPS video a face moves little in between. Blurred media read every frame (run_detect):
    a frame between detections showed a face that came into view since sharp, in no box yet.
    moving_camera: a hand-held or moving camera: the tracks follow the whole view's motion
    (CameraMotion), so that a shake does not split a person into several.
    """

    blur: bool = False
    save_media: bool = True
    detect_every: int = DEFAULT_DETECT_EVERY
    moving_camera: bool = False


class DetectFailed(RuntimeError):
    """A run stopped part-way by an error (a detector or a writer failing): the frames before it
    are in the outputs, closed and consistent, as after Ctrl-C; `result` says how far it got."""

    def __init__(self, message: str, result: DetectResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class DetectResult:
    out: Path
    frames: int = 0
    faces: int = 0
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    failed: str = ""  # what stopped the run part-way (DetectFailed), empty if nothing did
    unread: int = 0  # photos of a folder that could not be read (each named in errors): the run is not whole
    photos: int = 0  # photos the image or folder holds
    skipped: int = 0  # photos an earlier run did, not read again (--resume)
    kind: str = ""  # the source's kind (describe_source): photos can be resumed, video cannot
    outputs: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


@contextlib.contextmanager
def _stops_held():
    """Ctrl-C and SIGTERM taken inside are acted on at its end (in the main thread, where Python
    runs signal handlers; elsewhere nothing is held)."""
    signals = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in signals}
    if None in previous.values():  # a handler set outside Python: it could not be put back
        yield
        return
    taken: list[tuple[int, object]] = []
    for signum in signals:
        signal.signal(signum, lambda signum, frame: taken.append((signum, frame)))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in taken[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)  # Ctrl-C's KeyboardInterrupt, SIGTERM's as maskwatch.cli sets it
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


class CountedSink:
    """The loop's first sink (detect's JSON lines) with the frames and faces it took counted in
    the same step: a stop (Ctrl-C, SIGTERM) that came between a line's write and its count left
    detect-run.json and summary.json a frame short of detections.jsonl."""

    def __init__(self, sink: Sink | None, result: DetectResult) -> None:
        self.sink, self.result = sink, result

    def write(self, frame, faces, detected: bool) -> None:
        with _stops_held():
            if self.sink is not None:
                self.sink.write(frame, faces, detected)  # a line the disk refused is not counted
            self.result.frames += 1
            self.result.faces += len(faces)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


class GreyNote:
    """At the run's end, how many of the frames the detector read were grey (a night camera's, a
    grey file) into the run's errors: a sink closed before summary.json's, so that it says it too
    (added after, it was said on the terminal only)."""

    def __init__(self, processor: FrameProcessor, result: DetectResult, source: str, photos: bool) -> None:
        self.processor, self.result, self.source, self.photos = processor, result, source, photos

    def write(self, frame, faces, detected: bool) -> None:
        pass

    def close(self) -> None:
        grey, read = self.processor.grey_detections, self.processor.detections
        if grey:
            what = "photos" if self.photos else "frames the detector read"
            self.result.errors.append(f"{self.source}: {grey} of {read} {what} were grey (infrared): "
                                      f"{grey_words(self.processor)}")


def run_frames(frames, processor: FrameProcessor, sinks: list[Sink], result: DetectResult,
               max_frames: int | None = None) -> None:
    """The loop over a finite or endless source: the loop body (video/loop.py) for each frame.

    Ctrl-C ends it with result.interrupted set; whatever happens, people still in view are then
    decided and handed out, and the sinks are closed. result.frames counts the frames the first
    sink (detect's JSON lines) took, in the same step (CountedSink): a Ctrl-C in the detector
    leaves no line and counts none, a line a full disk refused is not counted, and a stop as a
    line is written waits until it is counted.
    """
    sinks = [CountedSink(sinks[0] if sinks else None, result), *sinks[1:]]
    try:
        for frame in frames:
            analyse(processor, frame, sinks)
            if max_frames is not None and result.frames >= max_frames:
                break
    except KeyboardInterrupt:
        result.interrupted = True
    except Exception as err:  # noqa: BLE001 - recorded for summary.json, then raised again
        result.failed = _described(err)
        raise
    finally:
        finish(processor, sinks)


def overwritten_inputs(source: str, info: SourceInfo, out: Path) -> list[Path]:
    """The input files that an annotated copy in `out` would replace (`detect photos --out photos`
    writes photos/a.jpg over a.jpg): the annotated media are named after their inputs."""
    if info.kind in ("image", "folder"):
        named = photo_files(source, info)  # a photo's frame is named after its file (read_frames)
    elif info.kind == "video":
        named = {Path(source): info.name}  # a video's output after the source
    else:
        return []
    outputs = {media_path(out, info, name).resolve() for name in named.values()}
    return [p for p in named if p.resolve() in outputs]


def foreign_outputs(source: str, info: SourceInfo, out: Path) -> list[Path]:
    """Files in `out` an annotated copy would replace that no earlier `detect` there wrote (the
    user's own clip.mp4 was replaced by the annotated copy of clip.mkv): what WRITTEN lists, or
    (from before it was kept) what the folder's last detections.jsonl names (a photo's name, a
    video's frames "<name>-000000" on), is ours to replace."""
    photos = info.kind in ("image", "folder")
    if photos:
        targets = {media_path(out, info, name): name for name in photo_files(source, info).values()}
    else:  # a video's, stream's or webcam's one copy, named after it
        targets = {media_path(out, info, info.name): info.name}
    written = written_before(out)
    there = {path: name for path, name in targets.items() if path.exists() and path.name not in written}
    if not there:
        return []
    ours: set[str] = set()
    try:
        with open(Path(out) / "detections.jsonl", encoding="utf-8") as lines:
            for line in lines:
                try:
                    name = str(json.loads(line).get("name"))
                except (ValueError, AttributeError):
                    continue
                ours.add(name if photos else name.rsplit("-", 1)[0])  # a video's frame "<name>-000123"
    except (OSError, UnicodeDecodeError):
        pass
    return sorted(path for path, name in there.items() if name not in ours)


def planned_outputs(source: str, info: SourceInfo, out: Path, save_media: bool) -> set[str]:
    """The names of the files a run may write into `out`."""
    photos = info.kind in ("image", "folder")
    names = {"detections.jsonl", RUN_RECORD} | (set() if photos else {"summary.json"})
    if save_media:
        named = photo_files(source, info).values() if photos else [info.name]
        names |= {media_path(out, info, name).name for name in named}
    return names


def open_lines(path: Path, keep: int | None = None) -> LinesFile:
    """detections.jsonl, written in place (not under a temp name): whatever stops a run, even a
    kill -9, leaves the lines of the frames done. keep: the bytes of it a resumed run goes on after."""
    if path.is_dir():
        raise OutputError(f"{path}: a folder is there, not a file; name another --out (nothing was written)")
    try:
        return LinesFile(path, keep)
    except OSError as err:
        raise OutputError(f"{path}: cannot be written ({err.strerror or err})") from None


def _unreadable(source: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    if not problems:
        return f"{source}: holds no frame"
    return f"{source}: no frame could be read ({len(problems)} problems; the last: {problems[-1]})"


def run_detect(source: str | os.PathLike, out: Path | str, detector: FaceFinder, options: DetectOptions | None = None, *,
               progress: bool = True, max_frames: int | None = None, resume: bool = False,
               on_frame: Callable[[Frame, list[Face]], None] | None = None, on_line: Callable[[dict], None] | None = None,
               **settings) -> DetectResult:
    """Detect, classify and (for video) track every face of `source`; write into `out`.

    out/detections.jsonl: one line per image or frame. Images get out/<name>.jpg; videos,
    streams and webcams get out/<name>.mp4 plus out/summary.json with one label per person and
    per-minute counts. Streams and webcams are read as a site's cameras are, reconnecting
    forever once they sent a frame (SourceError if none comes at the start), and as a camera
    does, a stream back within its offline_after (10 s) keeps the tracks of whoever was in view,
    and a longer outage ends them (live_frames); they run until Ctrl-C or max_frames. Ctrl-C stops cleanly: what was processed is kept and closed properly.

    options: blur, media, detect_every, moving_camera (DetectOptions); `settings` are its fields by
    name (`run_detect(clip, out, detector, save_media=False)`), over `options` where both are given.

    resume: for a photo or a folder of photos: the photos whose line an earlier run into `out`
    wrote are not read again, and the new lines are appended (video/resume.py; OutputError,
    nothing written, where that run's source or settings differ). out/detect-run.json records
    every run's source and settings, and at its end how many photos it skipped and did.

    on_frame(frame, faces) and on_line(record) are called after each frame's line is written;
    on_line gets exactly what detections.jsonl holds (`detect --json` prints it).
    """
    options = replace(options or DetectOptions(), **settings)
    if options.blur and options.save_media:  # every frame saved is one the detector read (the CLI refuses more)
        options = replace(options, detect_every=1)
    source = os.fspath(source)  # a Path as a str: summary.json and detect-run.json record it as text
    if max_frames is not None and max_frames < 1:  # checked before the output folder is made
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    info: SourceInfo = describe_source(source)
    out = Path(out)
    if resume and info.kind not in PHOTOS:
        raise OutputError(f"{redact_source(source)}: --resume goes on with photos only; a {info.kind}'s tracks cannot "
                          "resume: run it again without --resume (nothing was written)")
    if options.save_media and (clash := overwritten_inputs(source, info, out)):
        raise OutputError(f"{out}: the annotated copy of {clash[0].name} would be written over it"
                          f"{f' (and {len(clash) - 1} more)' if len(clash) > 1 else ''}; name another --out "
                          "(nothing was written)")
    if options.save_media and (foreign := foreign_outputs(source, info, out)):
        raise OutputError(f"{foreign[0]}: an annotated copy would be written over this file, which no earlier "
                          f"detect wrote{f' (and {len(foreign) - 1} more)' if len(foreign) > 1 else ''}; name "
                          "another --out (nothing was written)")
    result = DetectResult(out=out, kind=info.kind)
    if info.kind == "folder" and (videos := folder_files(Path(source), VIDEO_SUFFIXES)):
        result.errors.append(f"{source}: {len(videos)} video{'s' * (len(videos) > 1)} passed over ({videos[0].name}"
                             f"{', ...' * (len(videos) > 1)}): a folder is read as photos; `maskwatch batch` reads "
                             "its videos too")
    if info.kind == "folder" and (unread := folder_files(Path(source), UNREAD_PHOTO_SUFFIXES)):
        result.errors.append(f"{source}: {len(unread)} photo{'s' * (len(unread) > 1)} passed over ({unread[0].name}"
                             f"{', ...' * (len(unread) > 1)}): {UNREAD_PHOTOS}")
    if info.kind == "folder" and (within := photo_subfolders(Path(source))):
        result.errors.append(f"{source}: {len(within)} folder{'s' * (len(within) > 1)} of photos within passed over "
                             f"({within[0].name}{', ...' * (len(within) > 1)}): a folder is read as its own photos; "
                             "name each, or `maskwatch batch` reads them all")
    if info.kind == "folder" and (ours := written_files(Path(source), IMAGE_SUFFIXES | VIDEO_SUFFIXES)):
        result.errors.append(written_warning(source, ours))
    warned = len(result.errors)  # what comes after are the source's reading problems
    tracked = info.kind in ("video", "stream", "webcam")
    if not tracked and hasattr(detector, "for_photos"):
        detector = detector.for_photos()  # a still photo is read at a larger side than a video frame
    processor = FrameProcessor(detector, FaceTracker() if tracked else None, options.detect_every,
                               camera_motion=CameraMotion() if options.moving_camera else None)
    identity = run_identity(source, info, run_settings(detector, info, options))
    busy = f"{out}: another maskwatch detect is writing here; wait for it to end or name another --out (nothing was written)"
    held = contextlib.ExitStack()
    resumed, locked = Resumed(), False
    if resume and out.is_dir():
        with contextlib.ExitStack() as lock:  # the lines read are the lines gone on from
            lock.enter_context(only_writer(out, busy))
            resumed = earlier_run(out, identity, set(photo_files(source, info).values()), options.save_media)
            held, locked = lock.pop_all(), True
    result.skipped = len(resumed.names)
    sinks: list[Sink] = []
    failure: Exception | None = None
    if info.kind in ("stream", "webcam"):
        source_frames = live_frames(source, result.errors, name=info.name, on_lost=lambda: end_tracks(processor, sinks))
    else:
        source_frames = read_frames(source, result.errors, skip=resumed.names)
    try:
        # A stream that never sends a frame fails here, before any output is started; so does a
        # file or folder from which not one frame can be read (a previous run's outputs stay).
        # A resumed run whose photos were all done goes on to say so.
        first = next(source_frames, None)
        if first is None and not resumed.names:
            raise SourceError(_unreadable(redact_source(source), result.errors[warned:]))
        make_output_folder(out)
        # Two runs into one --out wrote one detections.jsonl at once (it is written in place).
        if not locked:
            held.enter_context(only_writer(out, busy))
        if leftovers := sorted(out.glob(".*.partial*")):  # hidden, and a video's may be gigabytes
            result.errors.append(f"{out}: {len(leftovers)} unfinished file{'s' * (len(leftovers) > 1)} of a run stopped "
                                 f"outright (kill -9, memory, power) ({leftovers[0].name}"
                                 f"{', ...' * (len(leftovers) > 1)}): they may be deleted")
        frames = itertools.chain([] if first is None else [first], source_frames)
        lines_path = out / "detections.jsonl"
        # Listed before any is written: a run killed outright (kill -9, memory, power) left copies
        # no list named, and every rerun into --out was refused as writing over the user's files.
        before = written_before(out)
        planned = planned_outputs(source, info, out, options.save_media)
        write_text(out / WRITTEN, written_text(out, before | planned, writing=planned))
        if "summary.json" in before:  # an earlier run's, not of the lines written from now: a run killed
            (out / "summary.json").unlink(missing_ok=True)  # outright left it beside them, "running": false
        going_on = resume and lines_path.is_file()
        if not going_on:
            if replaced := stopped_part_way(out):
                result.errors.append(replaced)
            # Gone before the lines it described: a run killed between leaves lines no record
            # vouches for, which --resume refuses, not lines said to be of other settings.
            (out / RUN_RECORD).unlink(missing_ok=True)
        with open_lines(lines_path, resumed.end if going_on else None) as lines:
            write_text(out / RUN_RECORD, json.dumps(run_record(identity, info, result, complete=False), indent=2))
            # The order is the contract: the line is written (and on_line called) before on_frame,
            # and on_frame before the frame is drawn; summary.json is written last.
            # on_line as a sink of its own: run_frames counts the line before it is echoed.
            sinks.append(written := JsonLinesSink(lines))
            if on_line is not None:
                sinks.append(LineEcho(written, on_line))
            if on_frame is not None:
                sinks.append(CallbackSink(on_frame))
            media = MediaSink(out, info, options.blur) if options.save_media else None
            if media is not None:
                sinks.append(media)
            sinks.append(GreyNote(processor, result, redact_source(source), info.kind in PHOTOS))
            # A camera's URL as it may be shown: its password stayed in summary.json.
            summary = SummarySink(out / "summary.json", redact_source(source), result) if tracked else None
            if summary is not None:
                sinks.append(summary)
            # Also with no known length (a stream, an .mjpeg): the count and rate say it is alive.
            total = info.frames if max_frames is None else min(info.frames or max_frames, max_frames)
            bar = progress_bar(frames, total=total, desc="detect", unit="frame" if tracked else "photo",
                               disable=not progress)
            try:
                run_frames(bar, processor, sinks, result, max_frames)
            except Exception as err:  # noqa: BLE001 - the lines so far are kept (this block completes), then raised
                failure = err
                if not result.failed:
                    result.failed = _described(err)
                elif _described(err) != result.failed:  # a sink's close failing after (the video removed): said too
                    result.errors.append(_described(err))
            finally:
                if hasattr(bar, "n"):  # the frames done: not one a Ctrl-C or an error cut short ("213/1500", "212 frames")
                    bar.n = min(bar.n, result.frames)
                bar.close()
                if media is not None:
                    result.outputs.extend(media.written)
    except BaseException:
        held.close()
        raise
    finally:
        source_frames.close()  # a stream's reader thread stops here, whatever happened
    # The folder stays locked until its last file is written: a run let in before then had its
    # list of outputs replaced by this one's.
    with held:
        result.outputs.append(lines_path)
        if summary is not None:
            result.outputs.append(summary.path)
        complete = not result.interrupted and failure is None and (max_frames is None or result.frames < max_frames)
        try:
            write_text(out / WRITTEN, written_text(out, before | {p.name for p in result.outputs} | {RUN_RECORD},
                                                  writing={RUN_RECORD}))  # written next
            write_text(out / RUN_RECORD, json.dumps(run_record(identity, info, result, complete), indent=2))
        except OSError:  # a full disk: the list written at the start stands, and the run's failure is said
            if failure is None:
                raise
    if info.kind in ("image", "folder") and not result.interrupted and (max_frames is None or result.frames < max_frames):
        result.photos = info.frames  # the photos the source was found to hold (describe_source)
        result.unread = result.photos - result.frames - result.skipped
    if summary is not None:
        result.summary = summary.summary
    if failure is not None:
        raise DetectFailed(f"{redact_source(source)}: stopped after {result.frames} frame{'s' * (result.frames != 1)} by an error: "
                           f"{result.failed} (those frames are in {out})", result) from failure
    return result


def run_settings(detector, info: SourceInfo, options: DetectOptions) -> dict:
    """What decides a run's outputs (detect-run.json): the detector's settings and model files,
    blur and media, and on video the tracking ones (photos are not tracked)."""
    settings = detector.settings() if hasattr(detector, "settings") else {"detector": type(detector).__qualname__}
    settings |= {"blur": options.blur, "media": options.save_media}
    if info.kind not in PHOTOS:
        settings |= {"detect_every": options.detect_every, "moving_camera": options.moving_camera}
    return settings


def run_record(identity: dict, info: SourceInfo, result: DetectResult, complete: bool) -> dict:
    """detect-run.json: what the run reads and with what, and how far it got (`complete`: through
    the whole source; a run killed outright leaves it false, as written at its start)."""
    counts = {"photos": info.frames, "skipped": result.skipped} if info.kind in PHOTOS else {}
    return identity | counts | {"frames": result.frames, "complete": complete, "interrupted": result.interrupted,
                                "failed": result.failed}


def _described(err: Exception) -> str:
    """An error as a user reads it: our own errors say what is wrong, others are named."""
    if isinstance(err, OSError) and err.filename:  # the file that failed (a full disk): its path first
        return os_error_text(err)
    return str(err) if isinstance(err, (OSError, ValueError)) else f"{type(err).__name__}: {err}"
