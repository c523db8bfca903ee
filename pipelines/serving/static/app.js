// The lipseq page: pick or record a face video, send it to /v1/transcribe, show the answer;
// or stream the webcam to /v1/live and watch the transcript grow.
"use strict";

const $ = (id) => document.getElementById(id);
let recorded = null; // a Blob from the webcam, used when no file is chosen
let subtitlesUrl = null; // the last answer's subtitles as a download, revoked when replaced
let readers = []; // the lip-reading models served, as /v1/models lists them (default first)

function setStatus(text) { $("status").textContent = text; }

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

// The picker is shown only when there is a choice; with one model requests name none, as
// before, and the service answers with its default.
const picking = () => readers.length > 1;

function showReader(reader) {
  $("model-line").textContent =
    `Model ${reader.name}: mouth crops ${reader.frame_shape.join("×")} at ${reader.fps} fps.`;
  $("mode").replaceChildren();
  for (const mode of reader.modes) {
    const option = new Option(mode, mode, mode === reader.default_mode, mode === reader.default_mode);
    $("mode").add(option);
  }
  $("grammar").disabled = reader.grammar_modes.length === 0;
  if ($("grammar").disabled) $("grammar").checked = false;
}

function chosenReader() {
  return readers.find((m) => m.name === $("model").value) || readers[0];
}

async function loadModels() {
  try {
    const response = await fetch("/v1/models");
    const { models } = await response.json();
    readers = models.filter((m) => m.task === "lipreading");
    if (!readers.length) {
      $("model-line").textContent = "This service has no lip-reading model.";
      $("submit").disabled = true;
      return;
    }
    const initial = readers.find((m) => m.default) || readers[0];
    if (picking()) {
      for (const m of readers) $("model").add(new Option(m.name, m.name, m === initial, m === initial));
      $("model-picker").hidden = false;
    }
    showReader(initial);
  } catch (error) {
    showError(`Could not read the model list: ${error}`);
  }
}

// The webcam shown in the preview; null (with the reason shown) when it cannot be opened.
async function openCamera(constraints) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia(constraints);
  } catch (error) {
    showError(`No webcam: ${error.message || error}`);
    return null;
  }
  const preview = $("preview");
  preview.srcObject = stream;
  preview.classList.add("live");
  await preview.play();
  return stream;
}

async function record() {
  showError("");
  const stream = await openCamera({ video: true, audio: false });
  if (!stream) return;
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start();
  setStatus("Recording 3 s…");
  await new Promise((resolve) => setTimeout(resolve, 3000));
  recorder.stop();
  await stopped;
  stream.getTracks().forEach((track) => track.stop());
  $("preview").classList.remove("live");
  recorded = new Blob(chunks, { type: recorder.mimeType || "video/webm" });
  $("video-file").value = "";
  setStatus(`Recorded ${(recorded.size / 1024).toFixed(0)} KiB; press Transcribe.`);
}

function drawConfidence(values) {
  const canvas = $("confidence");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.strokeStyle = "#2a7";
  context.lineWidth = 2;
  context.beginPath();
  values.forEach((value, index) => {
    const x = (index / Math.max(values.length - 1, 1)) * (canvas.width - 4) + 2;
    const y = canvas.height - 4 - (value === null ? 0 : value) * (canvas.height - 8);
    if (index === 0) context.moveTo(x, y); else context.lineTo(x, y);
  });
  context.stroke();
}

function fillTable(table, rows) {
  const body = $(table).querySelector("tbody");
  body.replaceChildren();
  for (const cells of rows) {
    const row = body.insertRow();
    for (const cell of cells) row.insertCell().textContent = cell;
  }
  $(table).hidden = rows.length === 0;
}

function showTiming(body) {
  const stages = Object.entries(body.seconds).map(([stage, s]) => `${stage} ${s} s`).join(", ");
  const seconds = (body.num_frames / body.fps).toFixed(1);
  const mode = picking() ? `${body.model}, ${body.mode}` : body.mode;
  $("timing").textContent = body.long
    ? `${mode}; ${body.num_frames} frames (${seconds} s) in ${body.pieces.length} pieces; ${stages}`
    : `${mode}, score ${body.score}; ${body.num_frames} frames; ${stages}`;
}

function showLongVideo(body) {
  $("long-video").hidden = !body.long;
  if (!body.long) return;
  fillTable("pieces", body.pieces.map((p) =>
    [p.start.toFixed(2), p.end.toFixed(2), p.text, p.roi_confidence.toFixed(2)]));
  const gaps = body.gaps.map((g) => `${g.start.toFixed(1)}–${g.end.toFixed(1)} s`);
  $("gaps").textContent = `No face: ${gaps.join(", ") || "none"}.`;
}

function showSubtitles(body, kind) {
  if (subtitlesUrl) URL.revokeObjectURL(subtitlesUrl);
  subtitlesUrl = null;
  const link = $("subtitles-link");
  link.hidden = body.subtitles === undefined;
  if (link.hidden) return;
  const type = kind === "vtt" ? "text/vtt" : "application/x-subrip";
  subtitlesUrl = URL.createObjectURL(new Blob([body.subtitles], { type }));
  link.href = subtitlesUrl;
  link.download = `transcript.${kind}`;
  link.textContent = `Download the subtitles (${kind === "vtt" ? "WebVTT" : "SRT"})`;
}

function showPictures(body) {
  const images = body.images || {};
  $("pictures").hidden = !images.crops;
  if (!images.crops) return;
  $("crops").src = images.crops;
  $("attention").hidden = !images.attention;
  if (images.attention) $("attention").src = images.attention;
  drawConfidence(body.roi_confidence);
}

function showResult(body, subtitleKind) {
  $("transcript").textContent = body.text || "(nothing read)";
  showTiming(body);
  fillTable("words", (body.words || []).map((w) =>
    [w.word, w.start.toFixed(2), w.end.toFixed(2)]));
  showLongVideo(body);
  showSubtitles(body, subtitleKind);
  showPictures(body);
  $("result").hidden = false;
}

async function transcribe(event) {
  event.preventDefault();
  showError("");
  const file = $("video-file").files[0];
  const video = file || recorded;
  if (!video) {
    showError("Choose a video file or record one first.");
    return;
  }
  const form = new FormData();
  form.append("video", video, file ? file.name : "webcam.webm");
  if (picking()) form.append("model", $("model").value);
  form.append("mode", $("mode").value);
  form.append("grammar", $("grammar").checked ? "true" : "false");
  form.append("images", "true");
  const subtitleKind = $("subtitles").value;
  if (subtitleKind) form.append("subtitles", subtitleKind);
  $("submit").disabled = true;
  setStatus("Reading the lips…");
  try {
    const response = await fetch("/v1/transcribe", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) {
      showError(`${response.status} ${body.error}: ${body.detail}`);
      setStatus("");
      return;
    }
    showResult(body, subtitleKind);
    setStatus("Done.");
  } catch (error) {
    showError(`The request failed: ${error}`);
    setStatus("");
  } finally {
    $("submit").disabled = false;
  }
}

// Live: camera frames to /v1/live over a WebSocket, the transcript growing as updates come.
let live = null; // {socket, stream, words, fps, stopped} from Live until its socket closes

function liveUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({ mode: $("mode").value });
  if (picking()) query.set("model", $("model").value);
  if ($("grammar").checked) query.set("grammar", "true");
  return `${scheme}://${location.host}/v1/live?${query}`;
}

// A frame as the service reads it: capture time (ms, float64 little endian), then a JPEG.
function sendFrame(socket, canvas, milliseconds) {
  canvas.toBlob((jpeg) => {
    if (!jpeg || socket.readyState !== WebSocket.OPEN) return;
    const head = new DataView(new ArrayBuffer(8));
    head.setFloat64(0, milliseconds, true);
    socket.send(new Blob([head, jpeg]));
  }, "image/jpeg", 0.92);
}

// Every frame the camera presents, drawn on a canvas and sent; skipped while the socket is
// backed up (the service repeats the frame before a missing one).
function streamFrames(session, video) {
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d");
  const minimum = 500 / session.fps; // a faster camera is thinned to about the model's rate
  let last = -Infinity;
  const onFrame = (now, metadata) => {
    if (session.stopped) return;
    const time = metadata.captureTime || (metadata.mediaTime * 1000) || now;
    const open = session.socket.readyState === WebSocket.OPEN;
    if (open && time - last >= minimum && session.socket.bufferedAmount < 1 << 20) {
      last = time;
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      sendFrame(session.socket, canvas, time);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

function showLive(session, update) {
  session.words.push(...update.words);
  const words = session.words;
  $("live-final").textContent = words.map((w) => w.word).join(" ");
  $("live-tentative").textContent = update.tentative.map((w) => w.word).join(" ");
  const rows = (ws, tentative) => ws.map((w) => ({ cells: [w.word, w.start.toFixed(2), w.end.toFixed(2)], tentative }));
  const body = $("live-words").querySelector("tbody");
  body.replaceChildren();
  for (const { cells, tentative } of [...rows(words, false), ...rows(update.tentative, true)]) {
    const row = body.insertRow();
    if (tentative) row.className = "tentative";
    for (const cell of cells) row.insertCell().textContent = cell;
  }
  const stages = Object.entries(update.seconds).map(([stage, s]) => `${stage} ${s} s`).join(", ");
  $("live-timing").textContent =
    `${update.covered_until.toFixed(1)} s read, final to ${update.final_until.toFixed(1)} s; ` +
    `lag ${update.lag.toFixed(2)} s; last window: ${stages}`;
}

function endLive(session) {
  session.stream.getTracks().forEach((track) => track.stop());
  $("preview").classList.remove("live");
  $("live").disabled = false;
  $("live-stop").hidden = true;
}

async function startLive() {
  showError("");
  const stream = await openCamera({ video: { frameRate: 25 }, audio: false });
  if (!stream) return;
  const socket = new WebSocket(liveUrl());
  const session = { socket, stream, words: [], fps: 25, stopped: false };
  live = session;
  $("live").disabled = true;
  $("live-stop").hidden = false;
  $("live-final").textContent = "";
  $("live-tentative").textContent = "";
  $("live-result").hidden = false;
  setStatus("Connecting…");
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      session.fps = message.fps;
      const who = picking() ? `${message.model}, ` : "";
      setStatus(`Live (${who}${message.mode}): windows of ${message.window_seconds} s every ${message.hop_seconds} s.`);
      streamFrames(session, $("preview"));
    } else if (message.type === "error") {
      showError(`${message.error}: ${message.detail}`);
    } else {
      showLive(session, message);
      if (message.type === "final") setStatus("Stopped; the whole stream is read.");
    }
  };
  socket.onclose = (event) => {
    if (live === session) live = null;
    endLive(session);
    if (event.code !== 1000 && !$("error").textContent) {
      showError(`The live stream closed (${event.code}${event.reason ? ": " + event.reason : ""}).`);
    }
  };
}

function stopLive() {
  const session = live;
  if (!session || session.stopped) return;
  session.stopped = true; // no more frames; updates still come until the final one
  if (session.socket.readyState === WebSocket.OPEN) {
    session.socket.send(JSON.stringify({ type: "stop" }));
  }
  endLive(session);
  setStatus("Reading the last frames…");
}

$("record").addEventListener("click", record);
$("live").addEventListener("click", startLive);
$("live-stop").addEventListener("click", stopLive);
$("upload-form").addEventListener("submit", transcribe);
$("model").addEventListener("change", () => showReader(chosenReader()));
loadModels();
