// casem console: the little the server-rendered pages need beyond htmx. No inline handlers (strict CSP).
"use strict";
(function () {
  const csrf = () => document.body.dataset.csrf || "";
  const live = (text) => { const el = document.getElementById("live-status"); if (el) el.textContent = text; };
  const flash = (text, kind) => {
    const el = document.getElementById("flash");
    if (!el) return;
    el.replaceChildren();
    const p = document.createElement("p");
    p.className = "flash " + (kind || "ok");
    p.textContent = text;
    el.appendChild(p);
  };
  const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));

  // -- theme: light, dark, or the system's (stored per browser) ---------------------------------------------
  const root = document.documentElement;
  const stored = localStorage.getItem("casem-theme");
  if (stored) root.dataset.theme = stored;
  document.getElementById("theme-toggle")?.addEventListener("click", () => {
    const dark = root.dataset.theme === "dark" ||
      (root.dataset.theme !== "light" && matchMedia("(prefers-color-scheme: dark)").matches);
    root.dataset.theme = dark ? "light" : "dark";
    localStorage.setItem("casem-theme", root.dataset.theme);
  });

  // -- a settings form that came back refused: the keyboard (and the view) go to the first field to fix -------
  const refused = document.querySelector('form [aria-invalid="true"]');
  if (refused) {
    refused.scrollIntoView({ block: "center" }); // with its message under it in view
    refused.focus({ preventScroll: true });
  }

  // -- htmx glue ------------------------------------------------------------------------------------------
  document.body.addEventListener("casem:flash", (e) => flash(e.detail.value || String(e.detail)));
  document.body.addEventListener("casem:commented", () => {
    const box = document.getElementById("comment-message");
    if (box) box.value = "";
  });
  document.body.addEventListener("htmx:configRequest", (e) => {
    if (e.detail.elt && e.detail.elt.id === "q") e.detail.parameters.caret = e.detail.elt.selectionStart ?? -1;
  });
  document.body.addEventListener("htmx:responseError", (e) => {
    flash("The change was not saved (" + e.detail.xhr.status + "). Reload the page and try again.", "error");
  });

  // -- on-call pages: acknowledge/resolve swap the page's row; the keyboard focus stays on that row ----------
  let pageRow = null;
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    const row = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("tr.page-row");
    pageRow = row ? row.id : null;
  });
  document.body.addEventListener("htmx:afterSettle", () => {
    const row = pageRow && document.getElementById(pageRow);
    if (!row) return;
    pageRow = null;
    (row.querySelector("button") || row.querySelector(".page-status")).focus();
  });

  // -- search box suggestions (a combobox: arrows move, Enter/Tab accept, Escape closes) --------------------
  const q = document.getElementById("q");
  if (q) {
    const options = () => Array.from(document.querySelectorAll("#suggestions li[role=option]"));
    const listbox = () => document.getElementById("suggestions");
    let active = -1;
    const mark = (i) => {
      const all = options();
      active = all.length ? (i + all.length) % all.length : -1;
      all.forEach((li, n) => li.setAttribute("aria-selected", String(n === active)));
      if (active >= 0) q.setAttribute("aria-activedescendant", all[active].id); else q.removeAttribute("aria-activedescendant");
    };
    const accept = (li) => {
      const box = listbox();
      const start = Number(box.dataset.start), end = Number(box.dataset.end);
      q.value = q.value.slice(0, start) + li.dataset.insert + q.value.slice(end);
      const caret = start + li.dataset.insert.length;
      q.setSelectionRange(caret, caret);
      q.focus();
      q.dispatchEvent(new Event("input", { bubbles: true }));
    };
    document.body.addEventListener("htmx:afterSwap", (e) => {
      if (e.detail.target.id !== "suggest-box") return;
      active = -1;
      q.removeAttribute("aria-activedescendant");
      const box = listbox();
      q.setAttribute("aria-expanded", String(!!box && !box.hidden && options().length > 0));
    });
    q.addEventListener("keydown", (e) => {
      const box = listbox();
      if (e.key === "Enter" && active < 0) q.removeAttribute("aria-activedescendant");
      const open = box && !box.hidden && options().length > 0;
      if (!open) return;
      if (e.key === "ArrowDown") { e.preventDefault(); mark(active + 1); }
      else if (e.key === "ArrowUp") { e.preventDefault(); mark(active - 1); }
      else if ((e.key === "Enter" || e.key === "Tab") && active >= 0) { e.preventDefault(); accept(options()[active]); }
      else if (e.key === "Escape") { box.hidden = true; q.setAttribute("aria-expanded", "false"); }
    });
    document.addEventListener("click", (e) => {
      const li = e.target.closest && e.target.closest("#suggestions li[role=option]");
      if (li) accept(li);
    });
  }

  // -- case list: select all, j/k, x, Enter ---------------------------------------------------------------
  document.addEventListener("change", (e) => {
    if (e.target.id === "select-all") {
      document.querySelectorAll("#case-table input[name=case_id]").forEach((box) => { box.checked = e.target.checked; });
    }
  });
  let row = -1;
  const rows = () => Array.from(document.querySelectorAll("#case-table tr.case-row"));
  const selectRow = (i) => {
    const all = rows();
    if (!all.length) return;
    row = Math.max(0, Math.min(i, all.length - 1));
    all.forEach((tr, n) => tr.classList.toggle("selected", n === row));
    all[row].querySelector("a")?.focus();
  };

  // -- keyboard shortcuts -----------------------------------------------------------------------------------
  let pendingG = false;
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || typing(document.activeElement)) return;
    const page = document.body.dataset.page;
    if (pendingG) {
      pendingG = false;
      if (e.key === "b") { location.href = "/board"; return; }
      if (e.key === "c") { location.href = "/cases"; return; }
    }
    switch (e.key) {
      case "/": if (q) { e.preventDefault(); q.focus(); q.select(); } else { location.href = "/cases"; } break;
      case "?": e.preventDefault(); document.getElementById("shortcuts")?.showModal(); break;
      case "g": pendingG = true; break;
      case "j": if (page === "cases") { e.preventDefault(); selectRow(row + 1); } break;
      case "k": if (page === "cases") { e.preventDefault(); selectRow(row - 1); } break;
      case "x": if (page === "cases" && row >= 0) { const box = rows()[row]?.querySelector("input[name=case_id]"); if (box) box.checked = !box.checked; } break;
      case "Enter": if (page === "cases" && row >= 0 && document.activeElement === document.body) location.href = rows()[row].dataset.href; break;
      case "c": if (page === "case") { e.preventDefault(); document.getElementById("comment-message")?.focus(); } break;
      case "a":
        if (page === "case") {
          e.preventDefault();
          assignToMe();
        }
        break;
    }
  });
  const assignToMe = () => {
    const key = document.getElementById("case-page")?.dataset.caseKey;
    if (!key) return;
    htmx.ajax("POST", "/cases/" + encodeURIComponent(key) + "/assignee", { target: "#case-body", swap: "outerHTML", values: { assignee: "me" }, headers: { "X-CSRF-Token": csrf() } })
      .then(() => live("Assigned to you"));
  };

  // -- attachments: upload with progress (XMLHttpRequest reports upload progress, fetch does not) -----------
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!form.matches || !form.matches("form[data-upload]")) return;
    e.preventDefault();
    const bar = form.querySelector("progress");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.setRequestHeader("HX-Request", "true");
    if (bar) { bar.hidden = false; bar.value = 0; }
    xhr.upload.addEventListener("progress", (p) => { if (bar && p.lengthComputable) bar.value = Math.round((p.loaded / p.total) * 100); });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        const body = document.getElementById("case-body");
        if (body) { body.outerHTML = xhr.responseText; htmx.process(document.getElementById("case-body")); }
        form.reset();
        if (bar) bar.value = 100;
        flash("File uploaded");
      } else {
        const text = new DOMParser().parseFromString(xhr.responseText, "text/html").body.textContent.trim();
        flash(text || "The upload failed (" + xhr.status + ")", "error");
      }
    });
    xhr.addEventListener("error", () => flash("The upload failed: the connection was lost", "error"));
    xhr.send(new FormData(form));
  });

  // -- board: drag and drop (SortableJS) and the keyboard ---------------------------------------------------
  // Moves are sent one after another, in the order the person made them: two quick key presses must not
  // race (the later status landing first, then being overwritten by the earlier). The board is re-read once
  // the last queued move is done, so a refresh never shows a card between two of its moves.
  let moves = Promise.resolve(), queued = 0;
  const sendMove = (key, status) => fetch("/cases/" + encodeURIComponent(key) + "/status", {
    method: "POST",
    headers: { "X-CSRF-Token": csrf(), "X-Casem-Board": "1", "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ status }),
    credentials: "same-origin",
  }).then((r) => {
    if (!r.ok) throw new Error(String(r.status));
    live(key + " moved to " + status.replace("_", " ").toLowerCase());
  }).catch(() => flash("Could not move " + key + "; the board was reloaded", "error"));
  const moveCase = (card, status) => {
    const key = card.dataset.caseKey;
    queued++;
    moves = moves.then(() => sendMove(key, status)).finally(() => { if (--queued === 0) refreshBoard(); });
    return moves;
  };
  const refreshBoard = () => {
    const board = document.getElementById("board");
    if (!board) return;
    const project = board.dataset.project || "";
    const focused = document.activeElement?.dataset?.caseId;
    htmx.ajax("GET", "/board?part=columns&project=" + encodeURIComponent(project), { target: "#board", swap: "outerHTML" }).then(() => {
      initBoard();
      if (focused) document.querySelector('.card[data-case-id="' + focused + '"]')?.focus();
    });
  };
  const initBoard = () => {
    if (typeof Sortable === "undefined") return;
    document.querySelectorAll("#board .cards").forEach((list) => {
      Sortable.create(list, {
        group: "board", animation: 120, draggable: ".card",
        onAdd: (evt) => moveCase(evt.item, evt.to.dataset.status),
      });
    });
  };
  document.addEventListener("keydown", (e) => {
    const card = e.target.closest && e.target.closest(".card");
    if (!card || typing(e.target)) return;
    if (e.key === "Enter") { location.href = "/cases/" + encodeURIComponent(card.dataset.caseKey); return; }
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    e.preventDefault();
    const lists = Array.from(document.querySelectorAll("#board .cards"));
    const here = lists.indexOf(card.closest(".cards"));
    const there = lists[here + (e.key === "ArrowRight" ? 1 : -1)];
    if (!there) return;
    there.prepend(card);
    card.focus();
    moveCase(card, there.dataset.status);
  });
  if (document.getElementById("board")) window.addEventListener("load", initBoard);

  // -- live updates: the org's domain events, as notices; the page re-reads what they touch -----------------
  if (document.body.dataset.csrf && window.EventSource) {
    const source = new EventSource("/live");
    let listTimer = null;
    // One refresh at a time; notices that arrive meanwhile cause one more refresh after it.
    let inFlight = false, again = false;
    // The person's own changes to the case (each htmx POST that swaps #case-body), counted when they start
    // and when they end: a refresh that read the case while one was on its way may predate it, and swapping
    // it in would show the page from before their change (the status select going back, a timeline without
    // the new cell). Such a refresh is dropped and read again.
    let ownWrites = 0;
    const ownWrite = (e) => {
      const verb = (e.detail.requestConfig && e.detail.requestConfig.verb) || "";
      if (verb.toLowerCase() !== "get" && e.detail.target && e.detail.target.id === "case-body") ownWrites++;
    };
    document.body.addEventListener("htmx:beforeRequest", ownWrite);
    document.body.addEventListener("htmx:afterRequest", ownWrite);
    const refreshCase = (key) => {
      if (inFlight) { again = true; return; }
      // Not while the person is typing in the case body: their edit would be lost (the next notice retries).
      if (typing(document.activeElement) && document.getElementById("case-body")?.contains(document.activeElement)) return;
      inFlight = true;
      const before = ownWrites;
      fetch("/cases/" + encodeURIComponent(key) + "?part=body", { headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
        .then((html) => {
          if (ownWrites !== before) { again = true; return; }
          const body = document.getElementById("case-body");
          const parsed = document.createElement("template");
          parsed.innerHTML = html.trim();
          const fresh = parsed.content.firstElementChild;
          if (!body || !fresh) return;
          body.replaceWith(fresh);
          htmx.process(fresh);
          live(key + " was updated");
        })
        .catch(() => {}) // the next notice, or a reload, reads it again
        .finally(() => { inFlight = false; if (again) { again = false; refreshCase(key); } });
    };
    // The on-call pages list: a page triggered, acknowledged or resolved anywhere in the org (the on-call
    // tenant's domain events travel the same bus) re-reads the list as filtered; the keyboard focus stays on
    // the same button of the same row.
    let pagesTimer = null, pagesInFlight = false, pagesAgain = null;
    // The person's own acknowledge/resolve requests: while one is on its way no list is swapped in (it would
    // swap their row out from under htmx), and a list read while one started or ended may predate it: dropped
    // and read again, like the case page's refresh.
    let rowWrites = 0, rowWritesOpen = 0;
    const inPageRow = (e) => e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("tr.page-row");
    document.body.addEventListener("htmx:beforeRequest", (e) => { if (inPageRow(e)) { rowWrites++; rowWritesOpen++; } });
    document.body.addEventListener("htmx:afterRequest", (e) => { if (inPageRow(e)) { rowWrites++; rowWritesOpen = Math.max(0, rowWritesOpen - 1); } });
    const refreshPages = (notice) => {
      if (pagesInFlight) { pagesAgain = notice; return; } // read again once this read is in
      if (rowWritesOpen) { clearTimeout(pagesTimer); pagesTimer = setTimeout(() => refreshPages(notice), 300); return; }
      const results = document.getElementById("page-results");
      if (!results) return;
      pagesInFlight = true;
      const before = rowWrites;
      fetch(location.pathname + location.search, {
        headers: { "HX-Request": "true", "HX-Target": "page-results" }, credentials: "same-origin",
      })
        .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
        .then((html) => {
          if (rowWrites !== before || rowWritesOpen) { pagesAgain = notice; return; }
          const focused = document.activeElement;
          const focusRow = focused && focused.closest && focused.closest("tr.page-row");
          const focusLabel = focused && focused.getAttribute && focused.getAttribute("aria-label");
          const parsed = document.createElement("template");
          parsed.innerHTML = html.trim();
          const fresh = parsed.content.getElementById("page-results");
          const current = document.getElementById("page-results");
          if (!fresh || !current) return;
          current.replaceWith(fresh);
          htmx.process(fresh);
          const row = focusRow && document.getElementById(focusRow.id);
          if (row) {
            const same = Array.from(row.querySelectorAll("button")).find((b) => b.getAttribute("aria-label") === focusLabel);
            (same || row.querySelector("button") || row.querySelector(".page-status")).focus();
          }
          const what = String(notice.type).replace("page.", "");
          live((notice.key ? notice.key + " " : "A page was ") + what);
        })
        .catch(() => {}) // the next notice, or a reload, reads it again
        .finally(() => {
          pagesInFlight = false;
          if (pagesAgain) { const next = pagesAgain; pagesAgain = null; refreshPages(next); }
        });
    };
    // A merge under way: each duplicate merged is an event naming this case (primary_id) and refreshes it, but
    // the merge's end is written without an event of its own, so while one is pending or running the page
    // re-reads itself every two seconds (and stops once none is).
    setInterval(() => {
      const casePage = document.getElementById("case-page");
      if (document.body.dataset.page !== "case" || !casePage) return;
      if (document.querySelector('li.merge[data-merge-status="PENDING"], li.merge[data-merge-status="RUNNING"]')) {
        refreshCase(casePage.dataset.caseKey);
      }
    }, 2000);
    source.addEventListener("change", (msg) => {
      let notice;
      try { notice = JSON.parse(msg.data); } catch { return; }
      const page = document.body.dataset.page;
      const casePage = document.getElementById("case-page");
      const thisCase = casePage && casePage.dataset.caseId;
      if (page === "case" && thisCase && (notice.case_id === thisCase || notice.primary_id === thisCase)) {
        refreshCase(casePage.dataset.caseKey);
      } else if (page === "board" && document.getElementById("board")) {
        if (!document.querySelector(".sortable-chosen") && queued === 0) refreshBoard();
      } else if (page === "oncall-pages" && String(notice.type).startsWith("page.")) {
        clearTimeout(pagesTimer);
        pagesTimer = setTimeout(() => refreshPages(notice), 200);
      } else if (page === "cases" && notice.case_id) {
        if (document.querySelector("#case-table input[name=case_id]:checked")) return; // keep a selection
        clearTimeout(listTimer);
        listTimer = setTimeout(() => {
          htmx.ajax("GET", location.pathname + location.search, { target: "#case-results", swap: "outerHTML", select: "#case-results" });
        }, 300);
      }
    });
    window.addEventListener("beforeunload", () => source.close());
  }
})();
