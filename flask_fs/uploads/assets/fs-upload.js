// flask_fs direct uploads: the browser sends files straight to the storage (S3, Swift, or the app's
// own upload endpoint), with progress, retries and resume. No dependencies; an ES module.
//
//   import { upload } from ".../fs-upload.js";
//   const { token } = await upload(file, { presign: "/uploads/presign", onProgress: (p) => ... });
//   // then send `token` to the app, which calls storage.finalize(token)
//
// Elements rendered by the `upload_field` Jinja macro (data-fs-upload) are wired up on load: each
// chosen file is uploaded at once and a hidden input carrying its token is added to the form.

const TUS = "1.0.0";
const MiB = 1024 * 1024;
export const defaults = {
  retries: 8, // attempts after a failure (network error, 5xx), with exponential backoff
  retryDelay: 500, // ms before the first retry
  chunkSize: 16 * MiB, // bytes per tus PATCH
  resumableFrom: 8 * MiB, // files from this size on use the resumable protocol when there is one
};

export class UploadError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "UploadError";
    this.status = status;
  }
  get retryable() {
    return this.status === 0 || this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One request with upload progress; resolves with the answer (any status), rejects on a network error.
function send(method, url, body, headers, onSent) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onSent && onSent(event.loaded);
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText, header: (n) => xhr.getResponseHeader(n) });
    xhr.onerror = () => reject(new UploadError(`network error during ${method} ${url}`));
    xhr.ontimeout = xhr.onerror;
    xhr.send(body);
  });
}

async function json(url, payload, headers) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(payload),
  });
  const text = await response.text();
  if (!response.ok) throw new UploadError(text || response.statusText, response.status);
  return JSON.parse(text);
}

async function retrying(options, attempt) {
  for (let failures = 0; ; failures++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof UploadError) || !error.retryable || failures >= options.retries) throw error;
      await sleep(options.retryDelay * 2 ** failures);
    }
  }
}

function check(answer, what) {
  if (answer.status >= 300) throw new UploadError(`${what}: ${answer.text || answer.status}`, answer.status);
  return answer;
}

// The whole file in one request: a multipart POST (S3, Swift) or a PUT (the app's endpoint).
function single(target, file, report) {
  if (target.method === "POST") {
    const form = new FormData();
    for (const [name, value] of Object.entries(target.fields || {})) form.append(name, value);
    form.append("file", file, target.file_name || file.name);
    return send("POST", target.url, form, target.headers, report).then((answer) => check(answer, "upload"));
  }
  return send("PUT", target.url, file, target.headers, report).then((answer) => check(answer, "upload"));
}

// tus 1.0 on the app's endpoint: create, then PATCH from the offset the server reports after any failure.
async function tus(url, file, report, options) {
  const base = { "Tus-Resumable": TUS };
  await retrying(options, async () =>
    check(await send("POST", url, null, { ...base, "Upload-Length": String(file.size) }), "create"));
  let offset = null;
  for (let failures = 0; offset === null || offset < file.size; ) {
    try {
      if (offset === null) {
        const head = check(await send("HEAD", url, null, base), "offset");
        offset = Number(head.header("Upload-Offset"));
        report(offset);
        continue;
      }
      const start = offset;
      const chunk = file.slice(start, Math.min(start + options.chunkSize, file.size));
      const headers = { ...base, "Upload-Offset": String(start), "Content-Type": "application/offset+octet-stream" };
      const answer = await send("PATCH", url, chunk, headers, (n) => report(start + n));
      if (answer.status === 409) { offset = null; continue; }
      check(answer, "upload");
      offset = Number(answer.header("Upload-Offset"));
      failures = 0;
    } catch (error) {
      if (!(error instanceof UploadError) || !error.retryable || failures >= options.retries) throw error;
      await sleep(options.retryDelay * 2 ** failures++);
      offset = null; // ask the server what arrived
    }
  }
}

// S3 multipart: ask the app which parts are stored and get URLs for the others, until none is missing.
async function s3Parts(url, file, report, options) {
  for (let failures = 0; ; ) {
    try {
      const plan = await json(url, { size: file.size }, options.headers);
      const missing = Object.entries(plan.urls).sort((a, b) => a[0] - b[0]);
      if (!missing.length) return;
      let done = Object.values(plan.parts).reduce((sum, size) => sum + size, 0);
      report(done);
      for (const [number, partUrl] of missing) {
        const start = (Number(number) - 1) * plan.part_size;
        const part = file.slice(start, Math.min(start + plan.part_size, file.size));
        check(await send("PUT", partUrl, part, {}, (n) => report(done + n)), `part ${number}`);
        done += part.size;
        failures = 0;
      }
    } catch (error) {
      if (!(error instanceof UploadError) || !error.retryable || failures >= options.retries) throw error;
      await sleep(options.retryDelay * 2 ** failures++);
    }
  }
}

// Upload one File: asks `presign` (the app's URL answering storage.presign_upload as JSON), sends the
// bytes, and resolves with {token, filename} for the app's finalize. `onProgress({loaded, total})`.
export async function upload(file, opts = {}) {
  const options = { ...defaults, ...opts };
  const total = file.size;
  const report = (loaded) => options.onProgress && options.onProgress({ loaded: Math.min(loaded, total), total });
  const target = await retrying(options, () =>
    json(options.presign, { name: file.name, size: file.size, type: file.type, ...options.extra }, options.headers));
  const resumable = total >= options.resumableFrom ? target.resumable : null;
  if (resumable && resumable.protocol === "tus") await tus(resumable.url, file, report, options);
  else if (resumable && resumable.protocol === "s3-multipart") await s3Parts(resumable.url, file, report, options);
  else await retrying(options, () => single(target, file, report));
  report(total);
  return { token: target.token, filename: target.filename };
}

function csrfHeaders() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? { "X-CSRFToken": meta.content } : {};
}

// Wire up an element rendered by the upload_field macro.
function wire(field) {
  if (field.dataset.fsBound) return;
  field.dataset.fsBound = "1";
  const input = field.querySelector("input[type=file]");
  const bar = field.querySelector("progress");
  const status = field.querySelector("output");
  const form = field.closest("form");
  let running = 0;
  const emit = (type, detail) => field.dispatchEvent(new CustomEvent(`fs-upload:${type}`, { bubbles: true, detail }));
  form && form.addEventListener("submit", (event) => {
    if (running) { event.preventDefault(); status.textContent = "Please wait for the uploads to finish."; }
  });
  const start = async (files) => {
    const list = Array.from(files);
    if (!list.length) return;
    running += list.length;
    const total = list.reduce((sum, f) => sum + f.size, 0);
    const loaded = new Map();
    bar.hidden = false;
    bar.value = 0;
    const failures = [];
    await Promise.all(list.map(async (file) => {
      try {
        const result = await upload(file, {
          presign: field.dataset.fsUpload, headers: csrfHeaders(),
          onProgress: ({ loaded: n }) => {
            loaded.set(file, n);
            const sum = Array.from(loaded.values()).reduce((a, b) => a + b, 0);
            bar.value = total ? sum / total : 1;
            status.textContent = `${Math.round(100 * bar.value)} %`;
            emit("progress", { file, loaded: sum, total });
          },
        });
        const hidden = document.createElement("input");
        Object.assign(hidden, { type: "hidden", name: field.dataset.fsName, value: result.token });
        hidden.dataset.fsFilename = result.filename;
        field.appendChild(hidden);
        emit("done", { file, ...result });
      } catch (error) {
        failures.push(`${file.name}: ${error.message}`);
        emit("error", { file, error });
      } finally {
        running--;
      }
    }));
    status.textContent = failures.length ? failures.join("; ") : "Uploaded.";
    field.classList.toggle("fs-failed", failures.length > 0);
    if (!failures.length && "fsAutoSubmit" in field.dataset && form) form.requestSubmit();
  };
  input.addEventListener("change", () => start(input.files));
  field.fsUpload = start; // for drag and drop: field.fsUpload(event.dataTransfer.files)
}

export function bind(root = document) {
  root.querySelectorAll("[data-fs-upload]").forEach(wire);
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => bind());
  else bind();
}
