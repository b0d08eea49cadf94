// The page: pick images, start runs, and poll the server for their progress.
// Plain JavaScript, no build step: the server checks everything, the page only shows.
"use strict";

const HEADERS = { "X-Painterly": "1" }; // the server refuses state changes without it
const FAST_POLL_MS = 500; // while something runs or waits
const SLOW_POLL_MS = 3000; // otherwise (another tab may start runs)

const state = {
  config: null,
  content: null, // {id, name, width, height, thumb}
  styles: [], // each also has .weight, its share in a blend (as typed)
  blend: false, // several paintings: one blended run instead of one run each
  cards: new Map(), // run id -> {el, previewVersion, stateName}
  pollTimer: null,
  polling: false,
  pollSoon: false,
};

const $ = (selector, root = document) => root.querySelector(selector);

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = { error: `the server answered ${response.status} ${response.statusText}` };
  }
  if (!response.ok) throw new Error(data.error || `request failed (${response.status})`);
  return data;
}

function showError(id, message) {
  const el = document.getElementById(id);
  el.textContent = message || "";
}

// ---------------------------------------------------------------------------------------------
// picking images

async function upload(file, role) {
  const limit = state.config.limits.max_upload_bytes;
  if (file.size > limit) {
    const mb = (limit / 1024 / 1024).toFixed(1);
    throw new Error(`${role} image '${file.name}' is larger than ${mb} MB; please use a smaller file`);
  }
  const query = new URLSearchParams({ role, name: file.name });
  return api(`api/images?${query}`, {
    method: "POST",
    body: file,
    headers: { ...HEADERS, "Content-Type": file.type || "application/octet-stream" },
  });
}

function chip(image, onRemove) {
  const figure = document.createElement("figure");
  figure.className = "chip";
  figure.dataset.id = image.id;
  const img = document.createElement("img");
  img.src = image.thumb;
  img.alt = image.name;
  const caption = document.createElement("figcaption");
  caption.textContent = image.name;
  const size = document.createElement("small");
  size.textContent = `${image.width}×${image.height}`;
  caption.append(document.createElement("br"), size);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove";
  remove.title = `remove ${image.name}`;
  remove.setAttribute("aria-label", remove.title);
  remove.textContent = "×";
  remove.addEventListener("click", (event) => {
    event.stopPropagation();
    onRemove();
  });
  figure.append(img, caption, remove);
  return figure;
}

function renderPicked() {
  const content = $("#content-picked");
  content.replaceChildren();
  if (state.content) {
    content.append(chip(state.content, () => { state.content = null; renderPicked(); }));
  }
  $("#content-drop").classList.toggle("filled", Boolean(state.content));
  const styles = $("#style-picked");
  styles.replaceChildren(
    ...state.styles.map((image, i) =>
      chip(image, () => { state.styles.splice(i, 1); renderPicked(); })),
  );
  $("#style-drop").classList.toggle("filled", state.styles.length > 0);
  const n = state.styles.length;
  $("#several").hidden = n < 2;
  const blend = state.blend && n > 1;
  $("#blend-weights").hidden = !blend;
  $("#blend-weights").replaceChildren(...(blend ? state.styles.map(weightRow) : []));
  $("#start").textContent = n > 1 && !blend ? `Paint ${n} runs` : "Paint";
}

function weightRow(image) {
  // One painting's share of the blend; the server normalizes the weights to sum to 1.
  const label = document.createElement("label");
  label.className = "weight";
  const name = document.createElement("span");
  name.textContent = image.name;
  const input = document.createElement("input");
  input.type = "number";
  input.min = "0";
  input.step = "any";
  input.value = image.weight ?? "1";
  input.setAttribute("aria-label", `weight of ${image.name} in the blend`);
  input.addEventListener("input", () => { image.weight = input.value; });
  label.append(name, input);
  return label;
}

async function addFiles(files, role) {
  const errorId = `${role}-error`;
  showError(errorId, "");
  const list = role === "content" ? [...files].slice(0, 1) : [...files];
  const drop = $(`#${role}-drop`);
  drop.classList.add("busy");
  const problems = [];
  try {
    for (const file of list) {
      if (role === "style" && state.styles.length >= state.config.limits.max_styles) {
        problems.push(`at most ${state.config.limits.max_styles} paintings at once`);
        break;
      }
      try {
        const image = await upload(file, role);
        if (role === "content") state.content = image;
        else state.styles.push(image);
        renderPicked();
      } catch (error) {
        problems.push(error.message);
      }
    }
  } finally {
    drop.classList.remove("busy");
  }
  showError(errorId, problems.join("\n"));
}

function setUpDrop(role) {
  const drop = $(`#${role}-drop`);
  const input = $(`#${role}-input`);
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = ""; // picking the same file again must fire "change" again
    if (files.length) addFiles(files, role);
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) addFiles(event.dataTransfer.files, role);
  });
}

async function useSample(role) {
  showError(`${role}-error`, "");
  try {
    const samples = await api("api/samples");
    if (role === "content") state.content = samples.content;
    else if (!state.styles.some((s) => s.id === samples.style.id)) state.styles.push(samples.style);
    renderPicked();
  } catch (error) {
    showError(`${role}-error`, error.message);
  }
}

// ---------------------------------------------------------------------------------------------
// starting runs

function numberField(id, label) {
  // An empty or unreadable box is sent as null, so the server names the field in its message.
  const input = $(`#${id}`);
  if (input.validity.badInput) throw new Error(`${label} must be a number`);
  return input.value.trim() === "" ? null : Number(input.value);
}

function readOptions() {
  const options = {
    size: numberField("size", "size"),
    strength: Number($("#strength").value),
    iterations: numberField("iterations", "iterations"),
    init: $("#init").value,
    preserve_color: $("#preserve-color").value,
    style_scale: numberField("style-scale", "style scale"),
    tv_weight: numberField("tv-weight", "TV weight"),
  };
  const ratio = numberField("ratio", "ratio");
  if (ratio !== null) options.ratio = ratio; // empty: the strength decides
  if (blending()) {
    options.style_blend = state.styles.map((s) =>
      (String(s.weight ?? "1").trim() === "" ? null : Number(s.weight ?? 1)));
  }
  return options;
}

function blending() {
  return state.blend && state.styles.length > 1;
}

function showStrength() {
  const overridden = $("#ratio").value.trim() !== "";
  $("#strength-value").textContent = overridden
    ? `${$("#strength").value} (the ratio under Advanced overrides it)`
    : $("#strength").value;
  $("#strength").closest(".field").classList.toggle("overridden", overridden);
}

async function start(event) {
  event.preventDefault();
  showError("start-error", "");
  if (!state.content) return showError("start-error", "Choose a photo first (step 1).");
  if (!state.styles.length) return showError("start-error", "Choose a painting first (step 2).");
  const button = $("#start");
  button.disabled = true;
  try {
    await api("api/runs", {
      method: "POST",
      headers: { ...HEADERS, "Content-Type": "application/json" },
      body: JSON.stringify({
        content: state.content.id,
        styles: state.styles.map((s) => s.id),
        blend: blending(),
        options: readOptions(),
      }),
    });
    poll();
  } catch (error) {
    showError("start-error", error.message);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// showing runs

function clock(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function number(x) {
  if (x === null || x === undefined) return "–";
  const a = Math.abs(x);
  return a !== 0 && (a >= 1e4 || a < 1e-2) ? x.toExponential(2) : x.toPrecision(3);
}

const STATE_TEXT = {
  queued: (run) => `Waiting · #${run.position}`,
  running: (run) => (run.cancelling ? "Cancelling…" : "Painting"),
  done: (run) => (run.stop_reason && run.stop_reason !== "iterations"
    ? `Done (stopped: ${run.stop_reason})` : "Done"),
  cancelled: () => "Cancelled",
  failed: () => "Failed",
};

function overlayText(run) {
  if (run.state === "queued") {
    return run.position === 1 ? "Next in line" : `Waiting for ${run.position - 1} run(s) ahead`;
  }
  if (run.state === "running" && !run.preview) return "Preparing: loading the network and the style…";
  if (run.state === "cancelled") return "Cancelled";
  if (run.state === "failed") return "This run failed";
  return "";
}

function cardFor(run) {
  let card = state.cards.get(run.id);
  if (card) return card;
  const el = $("#run-template").content.firstElementChild.cloneNode(true);
  el.dataset.id = run.id;
  $(".content-thumb", el).src = run.content.thumb;
  const first = $(".style-thumb", el);
  $(".style-thumbs", el).replaceChildren(...run.styles.map((style) => {
    const img = first.cloneNode();
    img.src = style.thumb;
    img.title = style.name;
    return img;
  }));
  for (const img of el.querySelectorAll(".mini")) {
    img.addEventListener("error", () => { img.hidden = true; });
  }
  $(".title", el).textContent =
    `${run.content.name} × ${run.styles.map((s) => s.name).join(" + ")}`;
  $(".settings", el).textContent = settingsLine(run.options);
  $(".cancel", el).addEventListener("click", async (event) => {
    event.target.disabled = true;
    try {
      await api(`api/runs/${run.id}/cancel`, { method: "POST", headers: HEADERS });
    } catch (error) {
      $(".run-error", el).textContent = error.message;
    }
    poll();
  });
  // Placeholder until the first iterate: the photo, faded.
  $(".preview", el).src = run.content.thumb;
  $(".canvas", el).classList.add("placeholder");
  card = { el, previewVersion: -1, result: null };
  state.cards.set(run.id, card);
  return card;
}

function settingsLine(o) {
  // What this run was asked for: the balance (strength, or the ratio that overrode it) first.
  const parts = [o.ratio === null ? `strength ${o.strength}` : `ratio ${o.ratio} (not strength)`];
  if (o.style_blend) {
    parts.push(`blend ${o.style_blend.map((w) => `${Math.round(100 * w)}%`).join(" / ")}`);
  }
  parts.push(`${o.size} px`, `${o.iterations} iterations`, `from ${o.init}`);
  if (o.preserve_color !== "none") parts.push(`photo's colors (${o.preserve_color})`);
  if (o.style_scale !== 1) parts.push(`style scale ${o.style_scale}`);
  if (o.tv_weight) parts.push(`TV ${o.tv_weight}`);
  return parts.join(" · ");
}

function updateCard(run) {
  const card = cardFor(run);
  const el = card.el;
  el.className = `run ${run.state}`;
  el.dataset.state = run.state;
  $(".state", el).textContent = STATE_TEXT[run.state](run);
  const preview = $(".preview", el);
  if (run.result && card.result !== run.result) {
    card.result = run.result;
    preview.src = run.result;
    $(".canvas", el).classList.remove("placeholder");
  } else if (!run.result && run.preview && run.preview_version !== card.previewVersion) {
    card.previewVersion = run.preview_version;
    preview.src = run.preview;
    preview.dataset.version = run.preview_version;
    $(".canvas", el).classList.remove("placeholder");
  }
  $(".overlay", el).textContent = overlayText(run);
  const progress = $("progress", el);
  progress.max = run.iterations || 1;
  progress.value = run.iteration;
  $(".iteration", el).textContent = `${run.iteration} / ${run.iterations}`;
  $(".elapsed", el).textContent = run.state === "queued" ? "–" : clock(run.elapsed);
  $(".left", el).textContent = run.state === "running" ? (run.left === null ? "…" : `≈ ${clock(run.left)}`) : "–";
  const losses = run.losses || {};
  $(".loss-content", el).textContent = number(losses.content);
  $(".loss-style", el).textContent = number(losses.style);
  $(".loss-total", el).textContent = number(losses.total);
  $(".run-error", el).textContent = run.error || "";
  $(".result-size-row", el).hidden = !run.result_size;
  if (run.result_size) $(".result-size", el).textContent = `${run.result_size.join("×")} px`;
  const cancel = $(".cancel", el);
  cancel.hidden = !(run.state === "queued" || run.state === "running");
  cancel.disabled = run.cancelling;
  const image = $(".download-image", el);
  const record = $(".download-record", el);
  image.hidden = !run.result;
  record.hidden = !run.record;
  if (run.result) {
    image.href = run.result;
    image.download = `painterly-${run.id}.png`;
    record.href = run.record;
    record.download = `painterly-${run.id}.png.json`;
  }
}

function render(runs) {
  const list = $("#run-list");
  const seen = new Set();
  runs.forEach((run, index) => {
    updateCard(run);
    const el = state.cards.get(run.id).el;
    if (list.children[index] !== el) list.insertBefore(el, list.children[index] || null);
    seen.add(run.id);
  });
  for (const [id, card] of state.cards) {
    if (!seen.has(id)) {
      card.el.remove();
      state.cards.delete(id);
    }
  }
  $("#no-runs").hidden = runs.length > 0;
  const running = runs.filter((r) => r.state === "running");
  const waiting = runs.filter((r) => r.state === "queued").length;
  const parts = [];
  if (running.length) parts.push("1 painting");
  if (waiting) parts.push(`${waiting} waiting`);
  $("#queue-summary").textContent = parts.length ? parts.join(" · ") : "Idle";
  const current = running[0];
  document.title = current && current.iterations
    ? `${Math.floor((100 * current.iteration) / current.iterations)}% · painterly`
    : "painterly";
  return running.length > 0 || waiting > 0;
}

async function poll() {
  // One poll at a time: a call while one is in flight asks for another right after it.
  if (state.polling) {
    state.pollSoon = true;
    return;
  }
  state.polling = true;
  clearTimeout(state.pollTimer);
  let busy = false;
  try {
    const data = await api("api/runs");
    $("#offline").hidden = true;
    busy = render(data.runs);
  } catch {
    $("#offline").hidden = false;
  } finally {
    state.polling = false;
  }
  const delay = state.pollSoon ? 0 : busy ? FAST_POLL_MS : SLOW_POLL_MS;
  state.pollSoon = false;
  state.pollTimer = setTimeout(poll, delay);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  try {
    state.config = await api("api/config");
  } catch (error) {
    $("#offline").hidden = false;
    return;
  }
  const d = state.config.defaults;
  const limits = state.config.limits;
  $("#size").value = d.size;
  $("#size").max = limits.max_size;
  $("#strength").max = limits.max_strength;
  $("#strength").value = d.strength;
  $("#ratio").value = d.ratio ?? "";
  $("#iterations").value = d.iterations;
  $("#init").value = d.init;
  $("#preserve-color").value = d.preserve_color;
  $("#style-scale").value = d.style_scale;
  $("#style-scale").max = limits.max_style_scale;
  $("#tv-weight").value = d.tv_weight;
  for (const id of ["strength", "ratio"]) $(`#${id}`).addEventListener("input", showStrength);
  showStrength();
  for (const radio of document.querySelectorAll("input[name='several']")) {
    radio.addEventListener("change", () => {
      state.blend = radio.value === "blend" && radio.checked;
      renderPicked();
    });
  }
  for (const role of ["content", "style"]) {
    setUpDrop(role);
    $(`#${role}-sample`).addEventListener("click", () => useSample(role));
  }
  $("#options").addEventListener("submit", start);
  renderPicked();
  document.body.dataset.ready = "1";
  poll();
}

main();
