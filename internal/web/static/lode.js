// Filter builder: "Add filter" copies the last row, "✖" removes a row. The
// form works without this script (it always shows one empty row).
// Column menus (<details class="col-menu">): one open at a time, placed
// over the page so the table's scrolling box cannot clip it, closed by a
// click elsewhere, Escape, or scrolling. Without this script they still
// open in place.
(function () {
  var menus = document.querySelectorAll("details.col-menu");
  if (!menus.length) return;
  function closeAll(except) {
    menus.forEach(function (m) { if (m !== except) m.open = false; });
  }
  menus.forEach(function (m) {
    m.addEventListener("toggle", function () {
      var box = m.querySelector(".col-menu-box");
      if (!m.open) { box.style.position = box.style.top = box.style.left = ""; return; }
      closeAll(m);
      var r = m.querySelector("summary").getBoundingClientRect();
      box.style.position = "fixed";
      box.style.top = (r.bottom + 2) + "px";
      box.style.left = Math.max(4, Math.min(r.left, window.innerWidth - box.offsetWidth - 4)) + "px";
    });
  });
  document.addEventListener("click", function (e) {
    if (!e.target.closest("details.col-menu")) closeAll(null);
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") closeAll(null);
  });
  window.addEventListener("scroll", function () { closeAll(null); }, true);
  window.addEventListener("resize", function () { closeAll(null); });
})();

(function () {
  var form = document.getElementById("filter-form");
  if (!form) return;
  var rows = form.querySelector(".filter-rows");
  var add = form.querySelector(".add-filter");
  // Rows are numbered like Datasette's form: _filter_column_1, _filter_op_1, ...
  function number(row, n) {
    row.querySelectorAll("[name^=_filter_]").forEach(function (el) {
      el.name = el.name.replace(/_\d+$/, "_" + n);
    });
  }
  function wire(row) {
    var rm = row.querySelector(".remove-filter");
    rm.hidden = false;
    rm.addEventListener("click", function () {
      if (rows.querySelectorAll(".filter-row").length > 1) {
        row.remove();
        rows.querySelectorAll(".filter-row").forEach(function (r, i) { number(r, i + 1); });
      } else {
        row.querySelector("select[name^=_filter_column]").value = "";
        row.querySelector("input[name^=_filter_value]").value = "";
      }
    });
  }
  rows.querySelectorAll(".filter-row").forEach(wire);
  add.hidden = false;
  add.addEventListener("click", function () {
    var all = rows.querySelectorAll(".filter-row");
    var row = all[all.length - 1].cloneNode(true);
    row.querySelector("select[name^=_filter_column]").value = "";
    row.querySelector("select[name^=_filter_op]").selectedIndex = 0;
    row.querySelector("input[name^=_filter_value]").value = "";
    number(row, all.length + 1);
    rows.appendChild(row);
    wire(row);
  });
})();
