"use strict";
(() => {
  const app = document.getElementById("app");
  const id = app.dataset.session;
  const $ = (x) => document.getElementById(x);
  const api = (path) => `/api/${path}/${id}`;
  const STEPS = [
    {side: "id_front", title: "Front of your ID card", hint: "Fill the frame with the card, portrait side up.", facing: "environment"},
    {side: "id_back", title: "Back of your ID card", hint: "Make the barcode or the text lines sharp and readable.", facing: "environment"},
    {side: "selfie", title: "A picture of your face", hint: "Look at the camera, face well lit, nothing covering it.", facing: "user"},
  ];
  const LABELS = {
    created: "Waiting for the pictures", collecting: "Taking the pictures", submitted: "Submitted; waiting to be checked",
    processing: "Checking your document and face…", verified: "Verified", rejected: "Not verified",
    needs_review: "Sent for manual review", cancelled: "Cancelled", expired: "This session has expired",
  };
  let step = 0;
  let stream = null;
  let blob = null;

  const params = new URLSearchParams(location.search);
  const coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
  const phone = params.get("mode") === "phone" || (params.get("mode") !== "desktop" && (coarse || window.innerWidth < 800));

  function show(section) {
    for (const s of ["desktop", "capture", "review"]) $(s).hidden = s !== section;
  }

  function render(status) {
    const el = $("status");
    el.textContent = LABELS[status.status] || status.status;
    el.dataset.status = status.status;
    const list = $("reasons");
    list.replaceChildren(...status.reasons.map((r) => {
      const li = document.createElement("li");
      li.textContent = r.replaceAll("_", " ");
      li.dataset.reason = r;
      return li;
    }));
    $("result-title").hidden = !status.final;
  }

  async function call(method, path, body) {
    const res = await fetch(path, {method, body});
    const json = await res.json();
    if (!res.ok) throw new Error(json.error ? json.error.message : res.statusText);
    return json;
  }

  async function poll() {
    for (;;) {
      let status;
      try { status = await call("GET", api("verification/check_status")); } catch (e) { $("status").textContent = e.message; }
      if (status) {
        render(status);
        if (status.final) { stopCamera(); show(null); return status; }
        if (phone && (status.status === "submitted" || status.status === "processing")) show(null);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  function stopCamera() {
    if (stream) { for (const t of stream.getTracks()) t.stop(); stream = null; }
  }

  async function startCamera(facing) {
    stopCamera();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: facing, width: {ideal: 1920}, height: {ideal: 1080}}, audio: false});
      $("video").srcObject = stream;
    } catch (e) {
      $("status").textContent = "The camera is not available (" + e.name + "); choose a picture instead.";
    }
  }

  function showStep() {
    const s = STEPS[step];
    $("step-title").textContent = s.title;
    $("step-hint").textContent = s.hint;
    for (const li of $("steps").children) {
      const i = STEPS.findIndex((x) => x.side === li.dataset.side);
      li.classList.toggle("done", i < step);
      if (i === step) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
    }
    $("capture").dataset.side = s.side;
    previewing(false);
    show("capture");
    startCamera(s.facing);
  }

  function previewing(on) {
    $("video").hidden = on;
    $("preview").hidden = !on;
    $("shoot").hidden = on;
    $("use").hidden = !on;
    $("retake").hidden = !on;
  }

  function setPreview(b) {
    blob = b;
    const url = URL.createObjectURL(b);
    $("preview").onload = () => URL.revokeObjectURL(url);
    $("preview").src = url;
    previewing(true);
    $("use").focus();
  }

  $("shoot").addEventListener("click", () => {
    const v = $("video");
    if (!v.videoWidth) { $("status").textContent = "The camera is not ready yet."; return; }
    const c = $("canvas");
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    c.getContext("2d").drawImage(v, 0, 0);
    c.toBlob((b) => { if (b) setPreview(b); }, "image/jpeg", 0.92);
  });
  $("file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) setPreview(f); e.target.value = ""; });
  $("retake").addEventListener("click", () => { blob = null; previewing(false); });
  $("use").addEventListener("click", async () => {
    if (!blob) return;
    const form = new FormData();
    form.append("side", STEPS[step].side);
    form.append("image", blob, STEPS[step].side + ".jpg");
    $("use").disabled = true;
    $("status").textContent = "Uploading…";
    try {
      const status = await call("POST", api("scan/add"), form);
      render(status);
      blob = null;
      if (status.missing.length === 0) { stopCamera(); show("review"); $("confirm").focus(); }
      else { step = STEPS.findIndex((s) => s.side === status.missing[0]); showStep(); }
    } catch (e) {
      $("status").textContent = "Upload failed: " + e.message;
    } finally {
      $("use").disabled = false;
    }
  });
  $("confirm").addEventListener("click", async () => {
    $("confirm").disabled = true;
    try {
      render(await call("POST", api("scan/confirm")));
      show(null);
      poll();
    } catch (e) {
      $("status").textContent = "Could not confirm: " + e.message;
      $("confirm").disabled = false;
    }
  });
  $("restart").addEventListener("click", async () => {
    try {
      render(await call("POST", api("scan/restart")));
      step = 0;
      showStep();
    } catch (e) {
      $("status").textContent = "Could not start over: " + e.message;
    }
  });

  (async () => {
    let status;
    try { status = await call("GET", api("verification/check_status")); } catch (e) { $("status").textContent = e.message; return; }
    render(status);
    if (!phone) { show("desktop"); poll(); return; }
    if (status.status === "created" || status.status === "collecting") {
      if (status.missing.length === 0) { show("review"); return; }
      step = STEPS.findIndex((s) => s.side === status.missing[0]);
      showStep();
    } else {
      poll();
    }
  })();
})();
