"""A doctor's end of a call in Python for the service-level tests: a real aiortc peer that joins through the
console's own WebSocket (the session cookie, the console's Origin), answers the spoke's offer with a synthetic
camera and tone, counts what it receives, and tells the hub it saw video, as the console page's script does."""

from __future__ import annotations

import asyncio
import json
import threading

from sync.hub.staff_api import COOKIE


class DoctorPeer:
    def __init__(self, url: str, token: str, call_id: str, ice: list[dict], *, relay_only: bool = False) -> None:
        self.url, self.token, self.call_id, self.ice, self.relay_only = url, token, call_id, ice, relay_only
        self.frames = self.audio = 0
        self.ended: dict | None = None
        self.modes: list[str] = []
        self.relayed = False
        self.closed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hangup: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> "DoctorPeer":
        self._thread.start()
        return self

    def hang_up(self) -> None:
        self._loop.call_soon_threadsafe(self._hangup.set)

    async def _run(self) -> None:
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
        from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
        from aiortc.rtcconfiguration import RTCIceTransportPolicy
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        from spoke_client.services.call import _bounded_encoders, _relayed

        self._loop = asyncio.get_running_loop()
        self._hangup = asyncio.Event()
        host = self.url.split("://", 1)[1]
        ws = await connect(f"ws://{host}/console/calls/{self.call_id}/ws", origin=self.url,
                           additional_headers={"Cookie": f"{COOKIE}={self.token}"})
        config = RTCConfiguration(iceServers=[RTCIceServer(**s) for s in self.ice])
        if self.relay_only:
            config.iceTransportPolicy = RTCIceTransportPolicy.RELAY
        pc = RTCPeerConnection(config)
        class GatedVideo(VideoStreamTrack):
            """The doctor's camera, stopped while the spoke says the link carries sound only (as the console
            page's script does)."""

            def __init__(self) -> None:
                super().__init__()
                self.sending = asyncio.Event()
                self.sending.set()

            async def recv(self):
                await self.sending.wait()
                return await super().recv()

        _bounded_encoders()        # the console caps its video as the spoke does
        video = GatedVideo()
        pc.addTrack(AudioStreamTrack())
        pc.addTrack(video)
        told = False

        async def count(track) -> None:
            nonlocal told
            try:
                while True:
                    await track.recv()
                    if track.kind == "video":
                        self.frames += 1
                        if self.frames % 10 == 0 and not self.relayed:   # while the link is up, not at the end
                            self.relayed = _relayed(pc)
                        if self.frames == 5 and not told:
                            told = True
                            await ws.send(json.dumps({"kind": "video"}))
                    else:
                        self.audio += 1
            except Exception:  # noqa: BLE001 - the track ended with the call
                pass

        pc.on("track", lambda track: asyncio.ensure_future(count(track)))
        hangup = asyncio.ensure_future(self._hangup.wait())
        try:
            while True:
                receive = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({receive, hangup}, return_when=asyncio.FIRST_COMPLETED)
                if hangup in done:
                    receive.cancel()
                    await ws.send(json.dumps({"kind": "hangup"}))
                    hangup = asyncio.ensure_future(asyncio.sleep(30))
                    continue
                m = json.loads(receive.result())
                if m["kind"] == "offer":
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"], type="offer"))
                    await pc.setLocalDescription(await pc.createAnswer())
                    await ws.send(json.dumps({"kind": "answer", "sdp": pc.localDescription.sdp, "type": "answer"}))
                elif m["kind"] == "mode":
                    self.modes.append(m["mode"])
                    if m["mode"] == "audio":
                        video.sending.clear()
                    elif m["mode"] == "video":
                        video.sending.set()
                elif m["kind"] == "ended":
                    self.ended = m
                    break
        except ConnectionClosed:
            pass
        finally:
            hangup.cancel()
            self.relayed = self.relayed or _relayed(pc)
            await pc.close()
            await ws.close()
            self.closed.set()
