// The grid's keyboard and editing glue. The server renders every cell, editor and card (partials
// of sheets/grid.html); this file only decides which one to ask for and where focus goes.
(() => {
  const table = document.getElementById("grid");
  if (!table) return;
  const editable = table.dataset.editable === "true";
  const cellsUrl = table.dataset.cellsUrl;
  const sheetUrl = cellsUrl.replace(/cells\/$/, "");
  const MAX_LIMIT = 1000; // sheets.grid.MAX_LIMIT: the most rows one answer holds
  let socket = null; // the htmx ws wrapper, for presence messages
  let moveAfterSave = null; // {id, dr, dc}: where focus goes once the saved cell comes back

  const cellUrl = (td) => `${cellsUrl}${td.parentElement.dataset.row}/${td.dataset.col}/`;
  const cells = (tr) => Array.from(tr.querySelectorAll("td.cell"));
  const editing = () => table.querySelector("td.editing, td.conflicted");

  const say = (message) => {
    if (socket) socket.send(JSON.stringify(message));
  };

  function focusCell(td) {
    if (!td) return;
    table.querySelectorAll("td.cell[tabindex='0']").forEach((c) => c.setAttribute("tabindex", "-1"));
    td.setAttribute("tabindex", "0");
    td.focus({ preventScroll: false });
    td.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function neighbour(td, dr, dc) {
    const tr = td.parentElement;
    if (dc) {
      const row = cells(tr);
      return row[row.indexOf(td) + dc] || null;
    }
    let next = dr > 0 ? tr.nextElementSibling : tr.previousElementSibling;
    while (next && !next.dataset.row) next = dr > 0 ? next.nextElementSibling : next.previousElementSibling;
    if (!next) return null;
    return cells(next)[cells(tr).indexOf(td)] || null;
  }

  // While an editor is on its way, keys typed meanwhile are kept (fast typists lose nothing) and
  // Esc/Enter/Tab wait for it. The cell as it was is kept too, so Esc restores it at once.
  let opening = null; // {id, extra, cancel, save}
  const shown = new Map(); // cell id -> its HTML before the editor opened

  function openEditor(td, typed) {
    if (!editable || td.classList.contains("ro") || editing() || opening) return;
    if (td.classList.contains("t-checkbox") && typed === undefined) {
      toggleCheckbox(td);
      return;
    }
    const params = new URLSearchParams({ edit: "1" });
    if (typed !== undefined) params.set("text", typed);
    shown.set(td.id, td.outerHTML);
    opening = { id: td.id, extra: "", cancel: false, save: null };
    td.dataset.opening = "1"; // gone once the server's answer replaces this cell
    htmx.ajax("GET", `${cellUrl(td)}?${params}`, { target: td, swap: "outerHTML" });
    say({ type: "editing", cell: td.id });
  }

  function whileOpening(event) {
    if (event.key === "Escape") {
      opening.cancel = true; // keys typed after it start a new edit
      opening.extra = "";
      opening.save = null;
    }
    else if (event.key === "Enter") opening.save = [1, 0];
    else if (event.key === "Tab") opening.save = [0, event.shiftKey ? -1 : 1];
    else if (event.key.length === 1 && !event.ctrlKey && !event.metaKey) opening.extra += event.key;
    else return;
    event.preventDefault();
    event.stopPropagation();
  }
  // Capture: between the old cell leaving and the editor's input taking focus, keys land on the
  // page body, not the table.
  document.addEventListener("keydown", (event) => opening && whileOpening(event), true);
  const giveUp = () => {
    opening = null;
  };
  document.body.addEventListener("htmx:responseError", giveUp);
  document.body.addEventListener("htmx:sendError", giveUp);

  function editorArrived(td) {
    const wanted = opening && opening.id === td.id ? opening : null;
    opening = null;
    const input = td.querySelector("textarea, input:not([type=hidden]):not(.date-picker), select");
    if (wanted && wanted.cancel) {
      cancelEditor(td);
      const back = document.getElementById(td.id);
      if (wanted.extra && back && !back.classList.contains("editing")) {
        openEditor(back, wanted.extra);
        if (opening) opening.save = wanted.save; // Enter pressed after those keys still saves
      }
      return;
    }
    if (input) {
      if (wanted && wanted.extra && "value" in input && input.tagName !== "SELECT") input.value += wanted.extra;
      input.focus();
      if (input.setSelectionRange && input.type === "text") input.setSelectionRange(input.value.length, input.value.length);
    }
    if (wanted && wanted.save) saveEditor(td, ...wanted.save);
  }

  function toggleCheckbox(td) {
    const on = !!td.querySelector(".check.on");
    htmx.ajax("POST", cellUrl(td), {
      target: td,
      swap: "outerHTML",
      values: { text: on ? "false" : "true", expected: td.querySelector(".check").dataset.v || "null" },
    });
  }

  function cancelEditor(td) {
    const before = shown.get(td.id);
    shown.delete(td.id);
    const changed = !td.querySelector(".cell-underneath") || !td.querySelector(".cell-underneath").hidden;
    if (before && !changed) {
      // Nothing changed underneath: put the cell back as it was, without a round trip.
      td.outerHTML = before;
      focusCell(document.getElementById(td.id));
    } else {
      htmx.ajax("GET", cellUrl(td), { target: td, swap: "outerHTML" }).then(() => {
        focusCell(document.getElementById(td.id));
      });
    }
    say({ type: "idle" });
    if (refetchWaiting) refetchLoaded(); // rows renumbered while this editor was open
  }

  function saveEditor(td, dr, dc) {
    const form = td.querySelector("form.cell-editor");
    if (!form) return;
    shown.delete(td.id);
    moveAfterSave = { id: td.id, dr, dc };
    // Posted directly: the form may have arrived a moment ago, before htmx wired it up.
    htmx.ajax("POST", form.getAttribute("hx-post"), { source: form, target: td, swap: "outerHTML" });
    say({ type: "idle" });
  }

  // Once a cell comes back from the server: focus follows Enter/Tab, editors get the caret.
  document.body.addEventListener("htmx:afterSettle", () => {
    const open = table.querySelector("td.editing");
    // htmx hands focus to the new cell with the old one's id, not to its input: move it there.
    if (open && ((opening && opening.id === open.id) || !open.querySelector(":focus"))) {
      editorArrived(open);
      return;
    }
    const asked = opening && document.getElementById(opening.id);
    if (asked && !asked.dataset.opening) opening = null; // answered with the plain cell (read-only)
    if (moveAfterSave) {
      const td = document.getElementById(moveAfterSave.id);
      if (td && !td.classList.contains("editing") && !td.classList.contains("conflicted")) {
        focusCell(neighbour(td, moveAfterSave.dr, moveAfterSave.dc) || td);
        moveAfterSave = null;
      } else if (!td) {
        moveAfterSave = null;
      }
    }
  });

  table.addEventListener("click", (event) => {
    const td = event.target.closest("td.cell");
    if (!td || td.classList.contains("editing") || td.classList.contains("conflicted")) return;
    focusCell(td);
    openEditor(td);
  });

  table.addEventListener("keydown", (event) => {
    const td = event.target.closest("td.cell");
    if (!td) return;
    if (td.classList.contains("editing")) {
      const multiline = event.target.tagName === "TEXTAREA";
      if (event.key === "Escape") {
        event.preventDefault();
        cancelEditor(td);
      } else if (event.key === "Enter" && !(multiline && (event.shiftKey || event.altKey))) {
        event.preventDefault();
        saveEditor(td, 1, 0);
      } else if (event.key === "Tab") {
        event.preventDefault();
        saveEditor(td, 0, event.shiftKey ? -1 : 1);
      }
      return;
    }
    if (td.classList.contains("conflicted")) return;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (moves[event.key]) {
      event.preventDefault();
      focusCell(neighbour(td, ...moves[event.key]) || td);
    } else if (event.key === "Tab") {
      const next = neighbour(td, 0, event.shiftKey ? -1 : 1);
      if (next) {
        event.preventDefault();
        focusCell(next);
      }
    } else if (event.key === "Enter" || event.key === "F2") {
      event.preventDefault();
      openEditor(td);
    } else if (event.key === " " && td.classList.contains("t-checkbox")) {
      event.preventDefault();
      openEditor(td);
    } else if ((event.key === "Delete" || event.key === "Backspace") && editable && !td.classList.contains("ro")) {
      event.preventDefault();
      openEditor(td, "");
    } else if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey) {
      // Typing on a focused cell starts editing with that key, as in any spreadsheet.
      event.preventDefault();
      openEditor(td, event.key);
    }
  });

  // Ctrl+Z (outside an editor) undoes the user's own last edit on this sheet.
  document.addEventListener("keydown", (event) => {
    if (!editable || !(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z" || event.shiftKey) return;
    if (event.target.closest("input, textarea, select, td.editing")) return;
    event.preventDefault();
    htmx.ajax("POST", `${sheetUrl}undo/`, { swap: "none", source: table });
  });

  // Paste a block copied from a spreadsheet onto the focused cell.
  table.addEventListener("paste", (event) => {
    const td = event.target.closest("td.cell");
    if (!editable || !td || td.classList.contains("editing")) return;
    const block = (event.clipboardData || window.clipboardData).getData("text");
    if (!block) return;
    event.preventDefault();
    htmx.ajax("POST", `${sheetUrl}paste/`, {
      swap: "none",
      source: table,
      values: { row: td.parentElement.dataset.row, column: td.dataset.col, block },
    });
  });

  // The date editor: typed text, with a calendar that fills it in.
  table.addEventListener("change", (event) => {
    if (event.target.classList.contains("date-picker")) {
      const text = event.target.closest("form").querySelector("input[name=text]");
      text.value = event.target.value;
      text.focus();
    }
  });

  // Rows: select, delete (with a confirmation), add.
  const deleteButton = document.querySelector("[data-action=rows-delete]");
  const runAi = document.querySelector("[data-action=run-ai]");
  const runAiBase = runAi ? runAi.getAttribute("href") : "";
  const selected = () => Array.from(table.querySelectorAll("tbody input[name=row]:checked"));
  table.addEventListener("change", (event) => {
    if (event.target.dataset.action === "select-all") {
      table.querySelectorAll("tbody input[name=row]").forEach((box) => (box.checked = event.target.checked));
    }
    table.querySelectorAll("tbody tr[data-row]").forEach((tr) => {
      const box = tr.querySelector("input[name=row]");
      tr.classList.toggle("selected", !!(box && box.checked));
    });
    if (runAi) {
      // The job form starts from the ticked rows ("rows selected in the grid").
      const rows = selected().map((box) => box.value);
      runAi.href = rows.length ? `${runAiBase}&rows=${rows.join(",")}` : runAiBase;
    }
    if (deleteButton) {
      const count = selected().length;
      deleteButton.disabled = count === 0;
      deleteButton.textContent = count ? `Delete ${count} row${count === 1 ? "" : "s"}` : "Delete rows";
    }
  });
  if (deleteButton) {
    deleteButton.addEventListener("click", () => {
      const rows = selected().map((box) => box.value);
      if (!rows.length) return;
      if (!window.confirm(`Delete ${rows.length} row${rows.length === 1 ? "" : "s"} from Smartsheet? You can undo it from History.`)) return;
      htmx.ajax("POST", `${sheetUrl}rows/delete/`, { swap: "none", source: table, values: { row: rows } });
    });
  }
  const addButton = document.querySelector("[data-action=row-add]");
  if (addButton) {
    addButton.addEventListener("click", () => {
      // The current cell: focused, or open in an editor (an editor that just arrived replaced
      // the focused cell and holds no tabindex yet), or one whose editor is on its way.
      const current =
        table.querySelector("td.cell[tabindex='0']") ||
        editing() ||
        (opening && document.getElementById(opening.id));
      const below = current ? current.parentElement.dataset.row : "";
      htmx.ajax("POST", `${sheetUrl}rows/add/`, { swap: "none", source: table, values: { below } });
    });
  }

  // Live refresh: a pushed row never clobbers a cell someone is editing here.
  document.body.addEventListener("htmx:oobBeforeSwap", (event) => {
    const target = event.detail.target;
    const open = editing();
    if (!open || !target.matches || !target.matches("tr[data-row]") || !target.contains(open)) return;
    event.detail.shouldSwap = false;
    const incoming = event.detail.fragment.querySelector("tr");
    incoming.querySelectorAll("td.cell").forEach((td) => {
      const current = document.getElementById(td.id);
      if (td.id !== open.id) {
        if (current) current.replaceWith(td.cloneNode(true));
        return;
      }
      const shown = td.textContent.trim();
      const note = open.querySelector(".cell-underneath");
      if (note && shown !== (open.dataset.display || "").trim()) {
        note.querySelector("span").textContent = shown || "(empty)";
        note.hidden = false;
      }
    });
  });
  table.addEventListener("click", (event) => {
    if (event.target.dataset.action === "take-new") {
      const td = event.target.closest("td");
      htmx.ajax("GET", `${cellUrl(td)}?edit=1`, { target: td, swap: "outerHTML" });
    }
  });
  document.body.addEventListener("click", (event) => {
    if (event.target.dataset.action === "reload") {
      event.preventDefault();
      window.location.reload();
    }
  });

  table.addEventListener("htmx:wsOpen", (event) => {
    socket = event.detail.socketWrapper;
    const open = editing();
    if (open) say({ type: "editing", cell: open.id });
  });
  table.addEventListener("htmx:wsClose", () => {
    socket = null;
  });
  // A heartbeat keeps this page counted as present (the server forgets silent sockets).
  setInterval(() => say({ type: "here" }), 20000);
  // Fetch the rows this grid shows again (row numbers, added rows, anything missed), keeping
  // the boxes ticked and the focused cell. Never under an open editor: it waits until it closes.
  let refetchWaiting = false;
  // Refetches can overlap (an add's renumbering, then a delete's): only the newest may swap,
  // or an older answer would bring back a row deleted meanwhile.
  let refetchSeq = 0;
  let refetchDone = 0; // the newest refetch whose rows were put in the grid
  let refetchAskedAt = 0;
  function refetchLoaded(atLeast = 0) {
    if (editing() || opening) {
      refetchWaiting = true;
      return;
    }
    refetchWaiting = false;
    const loaded = table.querySelectorAll("tbody tr[data-row]").length;
    // A grid showing every row grows by the added ones, instead of leaving them below the fold.
    const complete = !table.querySelector("tr.more-rows");
    const params = new URLSearchParams(table.dataset.query);
    params.set("offset", "0");
    params.set("limit", String(Math.max(100, loaded + (complete ? 100 : 0), atLeast)));
    refetchSeq += 1;
    refetchAskedAt = Date.now();
    const refetch = {
      target: "#grid-body",
      swap: "innerHTML",
      headers: { "X-Grid-Refetch": String(refetchSeq) },
    };
    htmx.ajax("GET", `${sheetUrl}?${params}`, refetch);
  }
  // What the person did to the rows while a refetch was on its way (ticked a box, moved focus)
  // is read just before the new rows replace them, and put back on them.
  function keptAcrossRefetch() {
    const focused = table.querySelector("td.cell[tabindex='0']");
    return {
      ticked: new Set(selected().map((box) => box.value)),
      focusedId: focused ? focused.id : null,
      hadFocus: !!focused && document.activeElement === focused,
    };
  }
  function restoreAfterRefetch(kept) {
    table.querySelectorAll("tbody input[name=row]").forEach((box) => {
      box.checked = kept.ticked.has(box.value);
    });
    const again = kept.focusedId && document.getElementById(kept.focusedId);
    if (again) {
      again.setAttribute("tabindex", "0");
      if (kept.hadFocus) again.focus({ preventScroll: true });
    }
    table.dispatchEvent(new Event("change", { bubbles: true })); // the Delete button's count
    revealAdded();
  }
  // The row this person just added: shown and focused once it is in the grid. In plain sheet
  // order its number is its place, so a grid not yet scrolled that far loads down to it.
  let added = null; // {row, number}
  function revealAdded() {
    const tr = added && document.getElementById(`r-${added.row}`);
    if (!tr) return false;
    added = null;
    focusCell(tr.querySelector("td.cell"));
    return true;
  }
  document.body.addEventListener("grid:row-added", (event) => {
    added = { row: event.detail.row, number: event.detail.number };
    if (revealAdded()) return;
    const plain = !table.dataset.query;
    const complete = !table.querySelector("tr.more-rows");
    if (plain && !complete && added.number <= MAX_LIMIT) refetchLoaded(added.number);
    // Otherwise the socket's push brings it (revealed then), or it is beyond what a grid loads.
  });
  table.addEventListener("htmx:wsAfterMessage", revealAdded);
  // An added or deleted row renumbers the rows below it (sheets.consumers: "renumber").
  table.addEventListener("htmx:wsBeforeMessage", (event) => {
    const found = /^<template id="grid-renumber" data-from="(\d+)">/.exec(event.detail.message);
    if (!found) return;
    event.preventDefault();
    const from = Number(found[1]);
    const numbers = Array.from(table.querySelectorAll("tbody tr[data-row]"), (tr) => Number(tr.dataset.number));
    const sorted = new URLSearchParams(table.dataset.query).has("sort");
    const beyond = !sorted && table.querySelector("tr.more-rows") && numbers.every((n) => n < from);
    if (!beyond) refetchLoaded();
  });
  // A running job's target cells (sheets.consumers: "grid-marks"): {cell id: [state, title] or
  // null}; when the job ends, every cell it marked is unmarked. An open editor is left alone.
  function markCell(td, job, mark) {
    if (td.classList.contains("editing") || td.classList.contains("conflicted")) return;
    if (td.dataset.job) {
      td.classList.remove("job-queued", "job-working", "job-failed");
      td.removeAttribute("title");
      delete td.dataset.job;
    }
    if (!mark) return;
    td.classList.add(`job-${mark[0]}`);
    td.title = mark[1];
    td.dataset.job = job;
  }
  table.addEventListener("htmx:wsBeforeMessage", (event) => {
    if (!event.detail.message.startsWith('<template id="grid-marks"')) return;
    event.preventDefault();
    const holder = document.createElement("div");
    holder.innerHTML = event.detail.message;
    const { job, active, marks } = holder.firstElementChild.dataset;
    if (active !== "true") {
      table.querySelectorAll(`td.cell[data-job="${job}"]`).forEach((td) => markCell(td, job, null));
      return;
    }
    for (const [id, mark] of Object.entries(JSON.parse(marks))) {
      const td = document.getElementById(id);
      if (td) markCell(td, job, mark);
    }
  });
  // A job that started after this page loaded: its queued cells come with the rows, fetched again.
  const jobsShown = () => new Set(Array.from(document.querySelectorAll("#grid-workers [data-job]"), (a) => a.dataset.job));
  let jobsBefore = jobsShown();
  table.addEventListener("htmx:wsAfterMessage", () => {
    const now = jobsShown();
    if ([...now].some((job) => !jobsBefore.has(job))) refetchLoaded();
    jobsBefore = now;
  });
  // An editor opened while the rows were on their way: they wait until it closes.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const headers = event.detail.requestConfig && event.detail.requestConfig.headers;
    if (!headers || !headers["X-Grid-Refetch"]) return;
    if (headers["X-Grid-Refetch"] !== String(refetchSeq)) {
      event.detail.shouldSwap = false; // a newer refetch is on its way
      return;
    }
    if (editing() || opening) {
      event.detail.shouldSwap = false;
      refetchWaiting = true;
      return;
    }
    refetchKept = keptAcrossRefetch();
    refetchDone = refetchSeq;
  });
  // A refetch that never landed (its answer lost, or one deferred under an editor whose close
  // went unnoticed) is asked again a few seconds later: the grid never keeps stale numbers.
  setInterval(() => {
    const owed = refetchWaiting || refetchDone < refetchSeq;
    if (owed && !editing() && !opening && Date.now() - refetchAskedAt > 3000) refetchLoaded();
  }, 1000);
  let refetchKept = null;
  table.addEventListener("htmx:afterSwap", (event) => {
    if (refetchKept && event.detail.target && event.detail.target.id === "grid-body") {
      // Restored at once, in the same task as the swap: no click can land on unticked rows.
      const kept = refetchKept;
      refetchKept = null;
      restoreAfterRefetch(kept);
    }
    if (refetchWaiting && !editing() && !opening) refetchLoaded();
  });
  // After a reconnect, rows may have changed while the socket was down: fetch them again.
  document.body.addEventListener("ws:reconnected", () => refetchLoaded());
})();
