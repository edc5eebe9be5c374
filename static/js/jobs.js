// The jobs pages: column references inserted by click, form sections shown as they apply,
// and the per-row table refreshed while a job's socket reports finished rows.
(() => {
  // Clicking a column inserts {{Title}} where the cursor is in the prompt.
  document.addEventListener("click", (event) => {
    const chip = event.target.closest("[data-insert]");
    if (!chip) return;
    const prompt = chip.closest("form").querySelector("textarea[name=template]");
    const start = prompt.selectionStart ?? prompt.value.length;
    const end = prompt.selectionEnd ?? start;
    const text = chip.dataset.insert;
    prompt.setRangeText(text, start, end, "end");
    prompt.focus();
  });

  // Sections that apply only to one choice (a new column, a filter, dropdown options).
  const showWhen = (form) => {
    if (!form) return;
    const value = (name) => {
      const checked = form.querySelector(`[name=${name}]:checked`);
      if (checked) return checked.value;
      const field = form.querySelector(`select[name=${name}]`);
      return field ? field.value : "";
    };
    for (const [attr, name] of [["showWhenTarget", "target"], ["showWhenSelection", "selection"],
                                ["showWhenType", "new_column_type"]]) {
      const selector = `[data-${attr.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]`;
      form.querySelectorAll(selector).forEach((section) => {
        section.hidden = !section.dataset[attr].split(" ").includes(value(name));
      });
    }
  };
  const jobForm = () => document.getElementById("job-form");
  document.addEventListener("change", (event) => {
    if (event.target.closest("#job-form")) showWhen(jobForm());
  });
  document.addEventListener("DOMContentLoaded", () => showWhen(jobForm()));
  document.addEventListener("htmx:afterSettle", () => showWhen(jobForm()));

  // A progress message that finished rows asks the rows table to refresh: at most every 1.5 s,
  // and never dropping the last one (so the final state always shows).
  let pending = null;
  document.addEventListener("htmx:wsAfterMessage", (event) => {
    if (!String(event.detail.message).includes("data-rows-changed")) return;
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      const rows = document.getElementById("job-rows");
      if (rows) htmx.trigger(rows, "job-rows");
    }, 1500);
  });
})();
