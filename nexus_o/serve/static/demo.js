// nexus-o web demo: a plain OpenAI Chat Completions client (no libraries, no network but this server).
// Audio from the microphone or a file is decoded by the browser and sent as 16 kHz mono WAV;
// spoken replies stream as pcm16 (24 kHz) and are wrapped into a WAV for the <audio> element.
"use strict";

const PCM16_RATE = 24000;   // OpenAI's pcm16: signed 16-bit little-endian mono at 24 kHz
const INPUT_RATE = 16000;   // what the model's audio encoder listens at
const $ = (id) => document.getElementById(id);

const state = { model: null, voice: "default", messages: [], attachments: [], recorder: null, busy: false };

function setStatus(text) { $("status").textContent = text || ""; }

// -- server info -------------------------------------------------------------------------------
async function connect() {
  try {
    const models = await (await fetch("/v1/models")).json();
    state.model = models.data[0].id;
    const health = await (await fetch("/health")).json();
    state.voice = (health.voices && health.voices[0]) || "default";
    $("model-name").textContent = `model: ${state.model}`;
    $("speak").disabled = !health.speech;
    $("speak").checked = Boolean(health.speech);
    if (!health.speech) $("speak").parentElement.title = "this model has no speech output";
  } catch (err) {
    $("model-name").textContent = "server unreachable";
  }
}

// -- history -----------------------------------------------------------------------------------
function bubble(role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  const span = document.createElement("span");
  span.className = "text";
  span.textContent = text || "";
  div.appendChild(span);
  $("history").appendChild(div);
  $("history").scrollTop = $("history").scrollHeight;
  return div;
}

function renderAttachments() {
  const box = $("attachments");
  box.replaceChildren();
  state.attachments.forEach((item, index) => {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.textContent = item.label;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.title = "remove";
    remove.onclick = () => { state.attachments.splice(index, 1); renderAttachments(); };
    chip.appendChild(remove);
    box.appendChild(chip);
  });
}

// -- media -> content parts --------------------------------------------------------------------
function readDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function bytesToBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function base64ToBytes(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function wavFromPcm16(pcm, rate) {  // pcm: Uint8Array of little-endian int16 samples, mono
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) header.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); header.setUint32(4, 36 + pcm.length, true); text(8, "WAVE");
  text(12, "fmt "); header.setUint32(16, 16, true); header.setUint16(20, 1, true); header.setUint16(22, 1, true);
  header.setUint32(24, rate, true); header.setUint32(28, rate * 2, true); header.setUint16(32, 2, true);
  header.setUint16(34, 16, true); text(36, "data"); header.setUint32(40, pcm.length, true);
  return new Blob([header.buffer, pcm], { type: "audio/wav" });
}

function floatToPcm16(samples) {
  const out = new DataView(new ArrayBuffer(samples.length * 2));
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out.setInt16(i * 2, Math.round(s * 32767), true);
  }
  return new Uint8Array(out.buffer);
}

async function audioToWav(arrayBuffer) {  // any format the browser decodes -> 16 kHz mono WAV bytes
  const context = new AudioContext();
  let decoded;
  try { decoded = await context.decodeAudioData(arrayBuffer); } finally { context.close(); }
  const frames = Math.max(1, Math.ceil(decoded.duration * INPUT_RATE));
  const offline = new OfflineAudioContext(1, frames, INPUT_RATE);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  const rendered = await offline.startRendering();
  const pcm = floatToPcm16(rendered.getChannelData(0));
  return new Uint8Array(await wavFromPcm16(pcm, INPUT_RATE).arrayBuffer());
}

async function addAudio(arrayBuffer, label) {
  setStatus("converting audio…");
  try {
    const wav = await audioToWav(arrayBuffer);
    state.attachments.push({ label, part: { type: "input_audio", input_audio: { data: bytesToBase64(wav), format: "wav" } },
                             preview: URL.createObjectURL(new Blob([wav], { type: "audio/wav" })), kind: "audio" });
    renderAttachments();
    setStatus("");
  } catch (err) {
    setStatus(`cannot read that audio: ${err.message || err}`);
  }
}

$("image").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const url = await readDataURL(file);
  state.attachments.push({ label: `🖼 ${file.name}`, part: { type: "image_url", image_url: { url } }, preview: url, kind: "image" });
  renderAttachments();
  event.target.value = "";
});

$("audio-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  await addAudio(await file.arrayBuffer(), `🎵 ${file.name}`);
  event.target.value = "";
});

$("record").addEventListener("click", async () => {
  if (state.recorder) { state.recorder.stop(); return; }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch (err) {
    setStatus(`microphone unavailable: ${err.message || err}`);
    return;
  }
  const chunks = [];
  const recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    state.recorder = null;
    $("record").classList.remove("recording");
    $("record").textContent = "● Record";
    await addAudio(await new Blob(chunks).arrayBuffer(), "🎤 recording");
  };
  recorder.start();
  state.recorder = recorder;
  $("record").classList.add("recording");
  $("record").textContent = "■ Stop";
});

// -- sending and streaming ---------------------------------------------------------------------
async function* serverEvents(response) {  // Server-Sent Events -> parsed JSON objects
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

async function send(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (state.busy || (!text && !state.attachments.length)) return;
  const content = [];
  if (text) content.push({ type: "text", text });
  const mine = bubble("user", text);
  for (const item of state.attachments) {
    content.push(item.part);
    const media = document.createElement(item.kind === "image" ? "img" : "audio");
    media.src = item.preview;
    if (item.kind === "audio") media.controls = true;
    mine.appendChild(media);
  }
  state.messages.push({ role: "user", content });
  state.attachments = [];
  renderAttachments();
  $("text").value = "";
  await reply();
}

async function reply() {
  const speak = $("speak").checked && !$("speak").disabled;
  const body = { model: state.model, messages: state.messages, stream: true,
                 modalities: speak ? ["text", "audio"] : ["text"] };
  if (speak) body.audio = { voice: state.voice, format: "pcm16" };
  const out = bubble("assistant", "");
  out.dataset.state = "pending";
  const textNode = out.querySelector(".text");
  state.busy = true;
  $("send").disabled = true;
  let answer = "";
  const pcm = [];
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!response.ok) {
      const error = await response.json().catch(() => ({ error: { message: response.statusText } }));
      throw new Error(error.error ? error.error.message : response.statusText);
    }
    for await (const chunk of serverEvents(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
      const piece = delta.content || (delta.audio && delta.audio.transcript) || "";
      if (piece) { answer += piece; textNode.textContent = answer; }
      if (delta.audio && delta.audio.data) pcm.push(base64ToBytes(delta.audio.data));
    }
    state.messages.push({ role: "assistant", content: answer });
    if (pcm.length) {
      const total = pcm.reduce((n, part) => n + part.length, 0);
      const joined = new Uint8Array(total);
      let offset = 0;
      for (const part of pcm) { joined.set(part, offset); offset += part.length; }
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.src = URL.createObjectURL(wavFromPcm16(joined, PCM16_RATE));
      out.appendChild(audio);
      audio.play().catch(() => {});  // autoplay may be refused; the controls remain
    }
    out.dataset.state = "done";
  } catch (err) {
    out.className = "msg error";
    textNode.textContent = `error: ${err.message || err}`;
    out.dataset.state = "error";
    state.messages.pop();  // let the user retry the same turn
  } finally {
    state.busy = false;
    $("send").disabled = false;
  }
}

// -- the tiny world's test examples (only when the server has them) ---------------------------------
async function loadExamples() {
  let examples = [];
  try { examples = (await (await fetch("/demo/examples")).json()).examples || []; } catch (err) { return; }
  if (!examples.length) return;
  const list = $("example-list");
  for (const example of examples) {
    const card = document.createElement("div");
    card.className = "example";
    card.dataset.kind = example.kind;
    const img = document.createElement("img");
    img.src = example.image_url;
    img.alt = `test image ${example.id}`;
    const question = document.createElement("div");
    question.className = "question";
    question.textContent = example.question;
    const answer = document.createElement("div");
    answer.className = "muted";
    answer.textContent = `expected: ${example.answer}`;
    card.append(img, question, answer);
    const buttons = document.createElement("div");
    buttons.className = "buttons";
    const askButton = (className, label, spoken) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = className;
      button.textContent = label;
      button.onclick = () => askExample(example, spoken);
      buttons.appendChild(button);
    };
    askButton("ask-written", "Ask in writing", false);
    if (example.audio_url) {
      const clip = document.createElement("audio");
      clip.controls = true;
      clip.preload = "none";
      clip.src = example.audio_url;
      card.appendChild(clip);
      askButton("ask-spoken", "Ask aloud", true);
    }
    card.appendChild(buttons);
    list.appendChild(card);
  }
  $("examples").hidden = false;
}

async function askExample(example, aloud) {  // a new chat with the example's image and question
  if (state.busy) return;
  state.messages = [];
  state.attachments = [];
  $("history").replaceChildren();
  setStatus("");
  const image = await readDataURL(await (await fetch(example.image_url)).blob());
  state.attachments.push({ label: "🖼 test image", part: { type: "image_url", image_url: { url: image } },
                           preview: image, kind: "image" });
  if (aloud) {
    if (example.system) state.messages.push({ role: "system", content: example.system });
    await addAudio(await (await fetch(example.audio_url)).arrayBuffer(), "🔊 spoken question");
    $("text").value = "";
  } else {
    $("text").value = example.question;
  }
  renderAttachments();
  $("composer").requestSubmit();
}

$("composer").addEventListener("submit", send);
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("composer").requestSubmit(); }
});
$("clear").addEventListener("click", () => { state.messages = []; $("history").replaceChildren(); setStatus(""); });
connect();
loadExamples();
