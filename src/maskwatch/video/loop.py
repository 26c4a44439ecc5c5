"""The one loop body every frame loop runs: `detect` and `batch` (run_frames), a site's cameras
and the Ray actors (CameraWorker), and `serve --source` (a one-camera site).

    faces = analyse(processor, frame, sinks)   # each frame
    finish(processor, sinks)                   # at the end: people still in view, then close

A frame goes through the processor, its faces to every sink in order; then people who came
into view go to sinks with start_people(tracks), and people whose track ended (their vote is
final) to sinks with write_people(tracks), each once; when the tracks end at once (a lost
stream, the end), sinks with nobody_in_view() hear it. Sinks need not have any of these.
"""

from __future__ import annotations

from dataclasses import replace

from maskwatch.faces import Face
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sources import Frame


def analyse(processor: FrameProcessor, frame: Frame, sinks: list) -> list[Face]:
    """One frame through the processor and into every sink (the frame carrying the faces it does
    not show, for blurring, and whether it was found grey); people started or ended handed out."""
    faces, detected = processor(frame)
    hidden = getattr(processor, "hidden_boxes", None)
    if hidden is not None and len(unshown := hidden()):
        frame = replace(frame, hidden=unshown)
    if getattr(processor, "grey", False):
        frame = replace(frame, grey=True)
    for sink in sinks:
        sink.write(frame, faces, detected)
    hand_out(sinks, processor.take_started_people(), "start_people")
    hand_out(sinks, processor.take_finished_people())
    return faces


def end_tracks(processor: FrameProcessor, sinks: list, ended: bool = False) -> None:
    """Whoever is in view now is decided and handed out (the stream stopped or was lost; `ended`:
    the loop's end), and sinks with a nobody_in_view() method are told the view is empty
    (retained MQTT counts)."""
    try:
        hand_out(sinks, processor.flush_people(ended))
    finally:  # also when storing them failed (the database away): the counts in view go to 0
        for sink in sinks:
            if (emptied := getattr(sink, "nobody_in_view", None)) is not None:
                emptied()


def finish(processor: FrameProcessor, sinks: list, ended: bool = True) -> None:
    """The end of a loop: people still in view are decided and handed out, then every sink closes,
    each also when one before it failed (a full disk stopped the lines, and the video was left
    unfinished under its temp name); the first failure is raised after. `ended` False: a live
    camera stopped, not a clip's end (FaceTracker.flush counts a short clip's faces only there)."""
    try:
        end_tracks(processor, sinks, ended=ended)
    finally:
        failure = None
        for sink in sinks:
            try:
                sink.close()
            except Exception as err:  # noqa: BLE001 - raised once every sink has closed
                failure = failure or err
        if failure is not None:
            raise failure


def hand_out(sinks: list, people: list, method: str = "write_people") -> None:
    if not people:
        return
    for sink in sinks:
        hand = getattr(sink, method, None)
        if hand is not None:
            hand(people)
