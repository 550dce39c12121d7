// The doctor's end of a call: the browser's own WebRTC. The spoke offers (its camera and microphone); this page
// answers with the doctor's, capped for a rural link (setParameters), over the hub's WebSocket. The page shows the
// spoke's video large and the doctor's own small, a link-quality indicator from getStats, and what happens.
(function () {
  "use strict";
  var root = document.getElementById("call");
  if (!root) { return; }
  var words = JSON.parse(root.getAttribute("data-words"));
  var ice = JSON.parse(root.getAttribute("data-ice"));
  var stateEl = document.getElementById("call-state"), note = document.getElementById("call-note");
  var linkEl = document.getElementById("call-link");
  var remote = document.getElementById("remote"), local = document.getElementById("local");
  var buttons = {mute: document.getElementById("mute"), camera: document.getElementById("camera"),
    hangup: document.getElementById("hangup")};
  var VIDEO_BPS = 180000, AUDIO_BPS = 32000, FPS = 15;
  var pc = new RTCPeerConnection({iceServers: ice});
  var stream = null, videoTrack = null, videoSender = null, over = false, linkAudioOnly = false, cameraOff = false;
  var told = false;
  // What the call carried, for the technician (and the tests): frames decoded, sound received, how it ended.
  var seen = window.spokeCall = {frames: 0, audioBytes: 0, ended: "", mode: "video", state: "connecting",
                                 states: ["connecting"]};
  var protocol = location.protocol === "https:" ? "wss://" : "ws://";
  // The last message number from the hub: a socket that dropped mid-call is opened again from there.
  var lastSeq = 0, RECONNECT_MS = 6000, droppedAt = 0, stateBefore = "";
  var ws = null;
  function openSocket() {
    ws = new WebSocket(protocol + location.host + root.getAttribute("data-ws") + (lastSeq ? "?after=" + lastSeq : ""));
    ws.onmessage = onMessage;
    ws.onopen = function () {
      if (droppedAt) {
        droppedAt = 0;
        show(stateBefore, stateBefore === "live" ? words.live : words.connecting);
        note.textContent = "";
      }
    };
    ws.onclose = function (event) {
      if (over) { return; }
      // A drop (no closing handshake, or the hub restarting a worker) is tried again for a few seconds: the
      // sound and picture go their own way meanwhile. A close on purpose, a refusal, or no hub: the call is over.
      var dropped = [1001, 1006, 1011, 1012, 1013, 1014].indexOf(event.code) >= 0;
      var now = Date.now();
      if (dropped && (!droppedAt || now - droppedAt < RECONNECT_MS)) {
        if (!droppedAt) {
          droppedAt = now;
          stateBefore = seen.state;
          show("reconnecting", words.reconnecting);
        }
        setTimeout(openSocket, 500);
        return;
      }
      finish(words.lost);
    };
  }

  function send(message) { if (ws.readyState === 1) { ws.send(JSON.stringify(message)); } }
  function show(state, text) {
    if (state !== seen.state) { seen.states.push(state); }
    seen.state = state;
    stateEl.textContent = text;
  }
  function finish(text) {
    if (over) { return; }
    over = true;
    show("ended", words.ended);
    note.textContent = text;
    seen.ended = text;
    try { pc.close(); } catch (e) { /* already closed */ }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    try { ws.close(); } catch (e) { /* already closed */ }
    Object.keys(buttons).forEach(function (k) { buttons[k].disabled = true; });
  }
  function sendVideo() {
    if (!videoSender) { return Promise.resolve(); }
    return videoSender.replaceTrack(linkAudioOnly || cameraOff ? null : videoTrack);
  }
  function cap() {
    pc.getSenders().forEach(function (sender) {
      if (!sender.track) { return; }
      var p = sender.getParameters();
      if (!p.encodings || !p.encodings.length) { p.encodings = [{}]; }
      if (sender.track.kind === "video") {
        p.encodings[0].maxBitrate = VIDEO_BPS;
        p.encodings[0].maxFramerate = FPS;
        videoSender = sender;
      } else {
        p.encodings[0].maxBitrate = AUDIO_BPS;
        p.encodings[0].priority = "high";
      }
      sender.setParameters(p).catch(function () { /* an older browser: the constraints still hold */ });
    });
  }
  var media = navigator.mediaDevices.getUserMedia({audio: true,
    video: {width: {ideal: 320}, height: {ideal: 240}, frameRate: {max: FPS}}})
    .then(function (s) {
      stream = s;
      videoTrack = s.getVideoTracks()[0] || null;
      local.srcObject = s;
      return s;
    }).catch(function () { note.textContent = words.no_camera; return null; });

  pc.ontrack = function (event) {
    if (!remote.srcObject) { remote.srcObject = new MediaStream(); }
    remote.srcObject.addTrack(event.track);
  };
  pc.onconnectionstatechange = function () {
    if (pc.connectionState === "connected") { show("live", words.live); }
    if (pc.connectionState === "failed") { send({kind: "hangup"}); finish(words.lost); }
  };

  function answer(offer) {
    return media.then(function (s) {
      return pc.setRemoteDescription(offer).then(function () {
        if (s) { s.getTracks().forEach(function (t) { pc.addTrack(t, s); }); }
        return pc.createAnswer();
      });
    }).then(function (a) { return pc.setLocalDescription(a); }).then(function () {
      // The whole answer once ICE has gathered (aiortc reads candidates from the SDP, not trickled).
      return new Promise(function (done) {
        if (pc.iceGatheringState === "complete") { done(); return; }
        pc.addEventListener("icegatheringstatechange", function () {
          if (pc.iceGatheringState === "complete") { done(); }
        });
        setTimeout(done, 4000);
      });
    }).then(function () {
      send({kind: "answer", sdp: pc.localDescription.sdp, type: "answer"});
      cap();
    });
  }

  function onMessage(event) {
    var m;
    try { m = JSON.parse(event.data); } catch (e) { return; }
    if (typeof m.seq === "number" && m.seq > lastSeq) { lastSeq = m.seq; }
    if (m.kind === "offer") {
      answer({type: "offer", sdp: m.sdp}).catch(function (e) { note.textContent = String(e); });
    } else if (m.kind === "mode" && m.why === "link") {
      linkAudioOnly = m.mode === "audio";
      seen.mode = m.mode;
      note.textContent = linkAudioOnly ? words.audio_only : words.video_back;
      sendVideo();
    } else if (m.kind === "ended") {
      finish(words.reasons[m.reason] || words.ended);
    } else if (m.kind === "error") {
      note.textContent = m.message || "";
      if (m.code) { finish(m.message || words.ended); }
    }
  }
  openSocket();

  // Link quality from what this end receives and what the spoke reports of what it receives from us.
  var last = {};
  setInterval(function () {
    if (over || pc.connectionState !== "connected") { return; }
    pc.getStats().then(function (report) {
      var loss = 0, rtt = 0;
      report.forEach(function (s) {
        if (s.type === "inbound-rtp") {
          var before = last[s.ssrc] || {got: 0, lost: 0};
          var got = s.packetsReceived - before.got, lost = Math.max(0, s.packetsLost - before.lost);
          if (got + lost > 0) { loss = Math.max(loss, lost / (got + lost)); }
          last[s.ssrc] = {got: s.packetsReceived, lost: s.packetsLost};
          if (s.kind === "video") {
            if (s.framesDecoded > seen.frames && !told) { told = true; send({kind: "video"}); }
            seen.frames = s.framesDecoded || 0;
          } else {
            seen.audioBytes = s.bytesReceived || 0;
          }
        } else if (s.type === "remote-inbound-rtp") {
          loss = Math.max(loss, s.fractionLost || 0);
          rtt = Math.max(rtt, s.roundTripTime || 0);
        }
      });
      var level = loss >= 0.10 || rtt >= 1.0 ? "poor" : (loss <= 0.03 && rtt <= 0.5 ? "good" : "fair");
      linkEl.className = "link-quality " + level;
      linkEl.textContent = words[level];
    }).catch(function () {});
  }, 1000);

  buttons.mute.addEventListener("click", function () {
    if (!stream) { return; }
    var track = stream.getAudioTracks()[0];
    if (!track) { return; }
    track.enabled = !track.enabled;
    buttons.mute.textContent = track.enabled ? words.mute : words.unmute;
  });
  buttons.camera.addEventListener("click", function () {
    cameraOff = !cameraOff;
    buttons.camera.textContent = cameraOff ? words.camera_on : words.camera_off;
    send({kind: "mode", mode: cameraOff ? "camera_off" : "camera_on", why: "doctor"});
    sendVideo();
  });
  buttons.hangup.addEventListener("click", function () {
    send({kind: "hangup"});
    setTimeout(function () { finish(words.reasons.doctor_hung_up); }, 3000);   // the hub's word, or this
  });
}());
