// The DeepCart web demo: a gallery from GET /users/{id}/recommendations, details from
// GET /items/{asin}, ratings stored with POST /users/{id}/reviews. Each browser is an anonymous
// visitor whose id lives in localStorage, so the ratings (kept by the server) survive reloads.
// Everything is built with textContent: product and review text never becomes markup.

const PLACEHOLDER = "/ui/placeholder.svg";
const WORST_TAGLINE =
  "You've seen the best products Amazon has to offer, but have you seen the worst?";
const BEST_TAGLINE = "Products picked for you from Amazon reviews.";
const KEY = { visitor: "deepcart.visitor", k: "deepcart.k", mode: "deepcart.mode" };

const $ = (id) => document.getElementById(id);

// localStorage may be off (private modes, policies): the page then works for one visit.
const memory = new Map();
const saved = {
  get(key) {
    try {
      return window.localStorage.getItem(key);
    } catch {
      return memory.get(key) ?? null;
    }
  },
  set(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch {
      memory.set(key, value);
    }
  },
};

function newVisitorId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const state = {
  visitor: null,
  k: 10,
  mode: "best",
  modes: ["best"],
  ratings: new Map(), // parent_asin -> stars, in the order the server returned them
  items: new Map(), // parent_asin -> GET /items answer
  selected: null,
  gallery: [],
  loads: 0, // the latest gallery request; older answers are dropped
  lists: 0, // the latest rendering of the rated list; older ones are dropped
  saving: Promise.resolve(), // ratings are sent one at a time, in the order given
  version: null, // the server state the cached product details came from
};

// ------------------------------------------------------------------------------ requests

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {
      ...options,
      headers: { Accept: "application/json", ...(options.headers || {}) },
    });
  } catch {
    throw new Error("the server did not answer (is it running? is the network up?)");
  }
  noteVersion(response.headers.get("X-DeepCart-Version"));
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const reason = body && (body.message || body.detail);
    throw new Error(`${path.split("?")[0]}: ${response.status} ${reason || response.statusText}`);
  }
  return body;
}

/** The server swapped in new data or models (``/reload_data``): product details cached here
 * (ratings, worst review) may be out of date, so they are fetched again. Only a newer state
 * counts: with several workers, one that has not yet reloaded still answers with the older
 * version, and going back to it would fetch everything again (and again). */
function noteVersion(header) {
  const version = Number(header);
  if (!header || !Number.isInteger(version)) return;
  if (state.version !== null && version <= state.version) return;
  const first = state.version === null;
  state.version = version;
  if (first) return;
  state.items.clear();
  // After the answer that told us: the details and the rated list, fetched again.
  setTimeout(() => {
    if (state.selected && !$("details").hidden) {
      const asin = state.selected;
      item(asin)
        .then((detail) => {
          if (state.selected === asin) renderDetails(detail);
        })
        .catch(() => null); // the next click shows the error
    }
    renderRated().catch(() => null);
  }, 0);
}

const TRYING = "Trying again…";

/** The status line; an error with a ``retry`` gets a "Try again" button that runs it. */
function showStatus(text, isError = false, retry = null) {
  const box = $("status");
  box.textContent = text;
  box.classList.toggle("error", isError);
  if (isError && retry) {
    const button = el("button", "retry", "Try again");
    button.type = "button";
    button.addEventListener("click", async () => {
      showStatus(TRYING);
      await retry();
      if (box.textContent === TRYING) showStatus(""); // it worked and said nothing
    });
    box.append(" ", button);
  }
}

/** The gallery and the list of rated products again (after a failure). */
async function refresh() {
  try {
    await Promise.all([loadGallery(), renderRated()]);
  } catch (err) {
    showStatus(`Could not update the gallery: ${why(err)}`, true, refresh);
  }
}

/** The visitor's ratings, gallery and rated list again (after a failure). */
async function reloadVisitor() {
  try {
    await loadVisitor();
  } catch (err) {
    showStatus(`Could not load your products: ${why(err)}`, true, reloadVisitor);
  }
}

/** An error on show is over once the page has fresh answers again. */
function clearError() {
  if ($("status").classList.contains("error")) showStatus("");
}

const why = (err) => String(err.message || err);

async function item(asin) {
  if (!state.items.has(asin)) {
    state.items.set(asin, await api(`/items/${encodeURIComponent(asin)}`));
  }
  return state.items.get(asin);
}

// ------------------------------------------------------------------------------ rendering

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** Text from the data (a title, a feature): its direction from its own letters, so that an
 * Arabic or Hebrew title reads right to left and its bidi controls stay inside it. */
function dataText(tag, className, text) {
  const node = el(tag, className, text);
  node.dir = "auto";
  return node;
}

/** An <img> of a product: its URL when it loads, the local placeholder otherwise. */
function setImage(img, url) {
  img.referrerPolicy = "no-referrer";
  img.decoding = "async";
  const fallback = () => {
    img.dataset.fallback = "true";
    img.src = PLACEHOLDER;
  };
  img.onerror = () => {
    if (img.dataset.fallback !== "true") fallback();
  };
  if (url && /^https?:\/\//.test(url)) {
    // http: too, as the page's policy allows: the 2014 and 2018 metadata has such URLs.
    img.dataset.fallback = "false";
    img.dataset.src = url;
    img.src = url;
  } else {
    fallback();
  }
}

function price(value) {
  return value === null || value === undefined ? "price unknown" : `$${value.toFixed(2)}`;
}

function starsText(value) {
  const full = Math.round(value);
  return "★".repeat(full) + "☆".repeat(5 - full);
}

function averageText(avg, count) {
  if (avg === null || avg === undefined) return "no average rating";
  const n = count ? ` from ${count.toLocaleString("en-US")} ratings` : "";
  return `${starsText(avg)} ${avg.toFixed(1)}${n}`;
}

function renderGallery(recs) {
  const list = $("gallery");
  list.replaceChildren();
  for (const it of recs.items) {
    const li = el("li", "card");
    const button = el("button", "card-button");
    button.type = "button";
    button.dataset.asin = it.parent_asin;
    button.setAttribute("aria-pressed", String(it.parent_asin === state.selected));
    const img = el("img", "card-image");
    img.alt = "";
    img.width = 160;
    img.height = 160;
    setImage(img, it.image);
    button.append(
      img,
      dataText("span", "card-title", it.title || it.parent_asin),
      el("span", "card-price", price(it.price)),
      el("span", "card-rating", averageText(it.average_rating)),
    );
    const mine = state.ratings.get(it.parent_asin);
    if (mine !== undefined) button.append(el("span", "card-mine", `you: ${starsText(mine)}`));
    if (it.worst_review) button.append(el("span", "card-worst", "has a scathing review"));
    button.addEventListener("click", () => select(it.parent_asin));
    li.append(button);
    list.append(li);
  }
  const n = state.ratings.size;
  const worst = state.mode === "worst";
  let title;
  let note;
  if (recs.fallback) {
    title = worst ? "The worst products with real engagement" : "Popular and well rated";
    if (n === 0) {
      note = "You are new here, so this is the list for everybody. Rate a product to make it yours.";
    } else if (worst) {
      // The worst-mode model learns from low ratings: high ones say nothing of what you hate.
      note =
        "Your ratings do not yet say what you dislike, so this is the list for everybody. " +
        "Rate a product 1 or 2 stars to make it yours.";
    } else {
      note = "Your ratings do not yet tell the model enough, so this is the list for everybody.";
    }
  } else {
    title = worst ? "What you would hate most" : "Picked for you";
    note = `From your ${n} rating${n === 1 ? "" : "s"}${
      recs.known ? " and your history" : ""
    }: the gallery re-ranks each time you rate.`;
  }
  $("gallery-title").textContent = `${title} (top ${recs.items.length})`;
  $("gallery-note").textContent = note;
  list.dataset.fallback = String(recs.fallback);
  list.dataset.mode = state.mode;
  list.dataset.state = "ready";
}

async function loadGallery() {
  const ticket = ++state.loads;
  $("gallery").dataset.state = "loading";
  const q = new URLSearchParams({ k: String(state.k), mode: state.mode });
  let recs;
  try {
    recs = await api(`/users/${encodeURIComponent(state.visitor)}/recommendations?${q}`);
  } catch (err) {
    if (ticket === state.loads) $("gallery").dataset.state = "error"; // not loading forever
    throw err;
  }
  if (ticket !== state.loads) return; // a newer request is on its way
  state.gallery = recs.items;
  renderGallery(recs);
  clearError();
}

function renderStars(asin) {
  const box = $("stars");
  // A star used from the keyboard keeps the focus when the stars are drawn again.
  const active = document.activeElement;
  const focused = box.contains(active) ? active.dataset.stars : null;
  box.replaceChildren();
  const mine = state.ratings.get(asin);
  for (let s = 1; s <= 5; s += 1) {
    const b = el("button", "star", "★");
    b.type = "button";
    b.dataset.stars = String(s);
    b.setAttribute("aria-label", `${s} star${s === 1 ? "" : "s"}`);
    b.setAttribute("aria-pressed", String(mine !== undefined && s <= mine));
    b.addEventListener("click", () => rate(asin, s));
    box.append(b);
    if (focused === b.dataset.stars) b.focus();
  }
  $("your-rating").textContent = mine === undefined ? "" : `your rating: ${mine} of 5`;
}

function renderDetails(detail) {
  const worst = state.mode === "worst";
  $("details").hidden = false;
  $("details").dataset.asin = detail.parent_asin;
  setImage($("details-image"), detail.image);
  $("details-title").textContent = detail.title || detail.parent_asin;
  const meta = [detail.store, detail.main_category, detail.parent_asin].filter(Boolean);
  $("details-meta").textContent = meta.join(" · ");
  $("details-price").textContent = price(detail.price);
  $("details-rating").textContent =
    `${averageText(detail.average_rating, detail.rating_number)} ` +
    `(${detail.ratings.toLocaleString("en-US")} in the training data)`;
  renderStars(detail.parent_asin);

  const features = $("features");
  features.replaceChildren(...detail.features.map((f) => dataText("li", null, f)));
  $("features-section").hidden = detail.features.length === 0;
  const description = $("description");
  description.replaceChildren(...detail.description.map((p) => dataText("p", null, p)));
  $("description-section").hidden = detail.description.length === 0;

  const review = detail.worst_review;
  $("worst-review").hidden = !(worst && review);
  if (review) {
    $("worst-title").textContent = review.title || "(untitled)";
    $("worst-excerpt").textContent = review.excerpt;
    const votes = review.helpful_vote;
    $("worst-meta").textContent =
      `${starsText(review.rating)} · ${votes} ${votes === 1 ? "person" : "people"} found it helpful`;
  }
}

function markSelected() {
  for (const b of document.querySelectorAll(".card-button")) {
    b.setAttribute("aria-pressed", String(b.dataset.asin === state.selected));
  }
}

async function select(asin) {
  state.selected = asin;
  markSelected();
  try {
    const detail = await item(asin);
    if (state.selected !== asin) return;
    renderDetails(detail);
    clearError();
    // On a narrow screen the details are below the gallery: bring them into view.
    const box = $("details").getBoundingClientRect();
    if (box.top < 0 || box.top > window.innerHeight * 0.8) {
      $("details").scrollIntoView({ block: "nearest" });
    }
  } catch (err) {
    if (state.selected === asin) {
      // Back to the product the details show, so that the stars rate what is marked.
      state.selected = $("details").hidden ? null : $("details").dataset.asin;
      markSelected();
    }
    showStatus(`Could not show that product: ${why(err)}`, true, () => select(asin));
  }
}

async function renderRated() {
  const ticket = ++state.lists;
  const list = $("rated");
  const asins = [...state.ratings.keys()].reverse(); // latest first
  const details = await Promise.all(asins.map((a) => item(a).catch(() => null)));
  if (ticket !== state.lists) return; // a newer list is on its way
  list.replaceChildren();
  asins.forEach((asin, i) => {
    const d = details[i];
    const li = el("li", "rated-item");
    li.dataset.asin = asin;
    const b = el("button", "rated-button");
    b.type = "button";
    const img = el("img", "rated-image");
    img.alt = "";
    img.width = 48;
    img.height = 48;
    setImage(img, d && d.image);
    b.append(
      img,
      dataText("span", "rated-title", (d && d.title) || asin),
      el("span", "rated-stars", starsText(state.ratings.get(asin))),
    );
    b.addEventListener("click", () => select(asin));
    li.append(b);
    list.append(li);
  });
  $("rated-empty").hidden = asins.length > 0;
  $("rated-title").textContent = `Your ratings (${asins.length})`;
}

/** The visitor's stored ratings (first: the gallery marks the rated cards), then the gallery
 * and the list of rated products. */
async function loadVisitor() {
  const visitor = state.visitor;
  const body = await api(`/users/${encodeURIComponent(visitor)}/reviews`);
  if (visitor !== state.visitor) return; // started over meanwhile
  state.ratings = new Map(body.reviews.map((r) => [r.parent_asin, r.rating]));
  await Promise.all([loadGallery(), renderRated()]);
}

// ------------------------------------------------------------------------------ actions

async function rate(asin, stars) {
  const visitor = state.visitor;
  const what = `${stars}-star rating`;
  showStatus(`Saving your ${what}…`);
  // One at a time: the last rating given is the last one stored, and the one shown.
  const post = state.saving.then(() =>
    api(`/users/${encodeURIComponent(visitor)}/reviews`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ parent_asin: asin, rating: stars }),
    }),
  );
  state.saving = post.catch(() => null);
  try {
    await post;
  } catch (err) {
    if (visitor === state.visitor) {
      showStatus(`Your ${what} was not saved: ${why(err)}`, true, () => rate(asin, stars));
    }
    return;
  }
  if (visitor !== state.visitor) return; // started over meanwhile: it was the old visitor's
  state.ratings.delete(asin); // a re-rating moves to the end, as on the server
  state.ratings.set(asin, stars);
  if (state.selected === asin) renderStars(asin);
  try {
    await Promise.all([loadGallery(), renderRated()]);
    showStatus(`Saved: ${stars} of 5. The gallery re-ranked.`);
  } catch (err) {
    const text = `Saved: ${stars} of 5, but the gallery could not be updated: ${why(err)}`;
    showStatus(text, true, refresh);
  }
}

function applyMode() {
  const worst = state.mode === "worst";
  document.body.dataset.mode = state.mode;
  $("tagline").textContent = worst ? WORST_TAGLINE : BEST_TAGLINE;
  $("mode-best").setAttribute("aria-pressed", String(!worst));
  $("mode-worst").setAttribute("aria-pressed", String(worst));
}

async function setMode(mode) {
  if (mode === state.mode) return;
  const before = state.mode;
  state.mode = mode;
  saved.set(KEY.mode, mode);
  applyMode();
  try {
    await loadGallery();
  } catch (err) {
    if (state.mode === mode) {
      // Back to the mode whose list is on show.
      state.mode = before;
      saved.set(KEY.mode, before);
      applyMode();
    }
    showStatus(`Could not switch to ${mode} mode: ${why(err)}`, true, () => setMode(mode));
    return;
  }
  try {
    if (state.selected) renderDetails(await item(state.selected));
  } catch (err) {
    showStatus(why(err), true, () => state.selected && select(state.selected));
  }
}

async function startOver() {
  state.visitor = newVisitorId();
  saved.set(KEY.visitor, state.visitor);
  state.selected = null;
  state.ratings = new Map(); // none yet, even if the server cannot be asked
  state.loads += 1; // the old visitor's gallery, if still on its way, is not shown
  state.gallery = [];
  $("gallery").replaceChildren();
  $("gallery").dataset.state = "loading";
  $("gallery-title").textContent = "Loading…";
  $("gallery-note").textContent = "";
  $("details").hidden = true;
  $("visitor-id").textContent = state.visitor;
  showStatus("You are a new visitor: nothing rated yet.");
  renderRated();
  try {
    await loadVisitor();
  } catch (err) {
    showStatus(`Could not load the new visitor's products: ${why(err)}`, true, reloadVisitor);
    if ($("gallery").dataset.state !== "ready") {
      $("gallery").dataset.state = "error"; // no "Loading…" forever, no old visitor's list
      $("gallery-title").textContent = "No products to show";
    }
  }
}

// ------------------------------------------------------------------------------ start

async function start() {
  state.visitor = saved.get(KEY.visitor);
  if (!state.visitor || !/^web-[0-9a-f]{16}$/.test(state.visitor)) {
    state.visitor = newVisitorId();
    saved.set(KEY.visitor, state.visitor);
  }
  const k = Number(saved.get(KEY.k));
  state.k = Number.isInteger(k) && k >= 5 && k <= 50 ? k : 10;
  $("visitor-id").textContent = state.visitor;
  $("k").value = String(state.k);
  $("k-value").textContent = String(state.k);

  let debounce = null;
  $("k").addEventListener("input", () => {
    state.k = Number($("k").value);
    $("k-value").textContent = String(state.k);
    saved.set(KEY.k, String(state.k));
    clearTimeout(debounce);
    const update = () =>
      loadGallery().catch((e) =>
        showStatus(`Could not update the gallery: ${why(e)}`, true, refresh),
      );
    debounce = setTimeout(update, 150);
  });
  $("mode-best").addEventListener("click", () => setMode("best"));
  $("mode-worst").addEventListener("click", () => setMode("worst"));
  $("start-over").addEventListener("click", startOver);

  try {
    const health = await api("/health");
    state.modes = health.modes;
    $("server-info").textContent =
      `${health.model} on ${health.data_tag}: ` +
      `${health.items.toLocaleString("en-US")} products, ` +
      `${health.users.toLocaleString("en-US")} users`;
    if (!state.modes.includes("worst")) {
      $("mode-worst").disabled = true;
      $("mode-worst").title = "worst mode is off: the server has no worst-mode model";
    }
    const mode = saved.get(KEY.mode);
    state.mode = mode === "worst" && state.modes.includes("worst") ? "worst" : "best";
    applyMode();
    await loadVisitor();
    document.body.dataset.ready = "true";
  } catch (err) {
    showStatus(`The demo could not start: ${why(err)}.`, true, () => location.reload());
    if ($("gallery").dataset.state !== "ready") {
      $("gallery").dataset.state = "error"; // no "Loading…" forever
      $("gallery-title").textContent = "No products to show";
    }
  }
}

start();
