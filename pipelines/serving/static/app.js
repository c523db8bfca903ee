// The lipseq page: pick or record a face video, send it to /v1/transcribe, show the answer.
"use strict";

const $ = (id) => document.getElementById(id);
let recorded = null; // a Blob from the webcam, used when no file is chosen

function setStatus(text) { $("status").textContent = text; }

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

async function loadModels() {
  try {
    const response = await fetch("/v1/models");
    const { models } = await response.json();
    const reader = models.find((m) => m.task === "lipreading");
    if (!reader) {
      $("model-line").textContent = "This service has no lip-reading model.";
      $("submit").disabled = true;
      return;
    }
    $("model-line").textContent =
      `Model ${reader.name}: mouth crops ${reader.frame_shape.join("×")} at ${reader.fps} fps.`;
    for (const mode of reader.modes) {
      const option = new Option(mode, mode, mode === reader.default_mode, mode === reader.default_mode);
      $("mode").add(option);
    }
    $("grammar").disabled = reader.grammar_modes.length === 0;
  } catch (error) {
    showError(`Could not read the model list: ${error}`);
  }
}

async function record() {
  showError("");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (error) {
    showError(`No webcam: ${error.message || error}`);
    return;
  }
  const preview = $("preview");
  preview.srcObject = stream;
  preview.classList.add("live");
  await preview.play();
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
  preview.classList.remove("live");
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

function showResult(body) {
  $("transcript").textContent = body.text || "(nothing read)";
  $("timing").textContent =
    `${body.mode}, score ${body.score}; ${body.num_frames} frames; ` +
    `preparation ${body.seconds.prepare} s, model ${body.seconds.model} s`;
  const rows = $("words").querySelector("tbody");
  rows.replaceChildren();
  for (const word of body.words || []) {
    const row = rows.insertRow();
    row.insertCell().textContent = word.word;
    row.insertCell().textContent = word.start.toFixed(2);
    row.insertCell().textContent = word.end.toFixed(2);
  }
  $("words").hidden = !(body.words && body.words.length);
  $("crops").src = body.images.crops;
  $("attention").hidden = !body.images.attention;
  if (body.images.attention) $("attention").src = body.images.attention;
  drawConfidence(body.roi_confidence);
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
  form.append("mode", $("mode").value);
  form.append("grammar", $("grammar").checked ? "true" : "false");
  form.append("images", "true");
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
    showResult(body);
    setStatus("Done.");
  } catch (error) {
    showError(`The request failed: ${error}`);
    setStatus("");
  } finally {
    $("submit").disabled = false;
  }
}

$("record").addEventListener("click", record);
$("upload-form").addEventListener("submit", transcribe);
loadModels();
