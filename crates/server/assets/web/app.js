// 保障工作台: tables (sort, filter, pages), charts (ECharts, click to drill down), the window's visit picker.
(function () {
  'use strict';

  function setupTable(sec) {
    var table = sec.querySelector('table');
    // Only a table with a header row and a body is sorted, filtered and paged.
    if (!table || !table.tHead || !table.tBodies[0] || sec.getAttribute('data-ready')) return;
    sec.setAttribute('data-ready', '1');
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows).filter(function (r) { return !r.classList.contains('empty'); });
    var pageSize = parseInt(sec.getAttribute('data-page-size') || '20', 10);
    var page = 0, shown = rows;
    var pager = sec.querySelector('.pager');
    var count = sec.querySelector('.count');
    function render() {
      var pages = Math.max(1, Math.ceil(shown.length / pageSize));
      if (page >= pages) page = pages - 1;
      rows.forEach(function (r) { r.style.display = 'none'; });
      shown.forEach(function (r, i) {
        r.style.display = (i >= page * pageSize && i < (page + 1) * pageSize) ? '' : 'none';
        tbody.appendChild(r);
      });
      if (count) count.textContent = '共 ' + shown.length + ' 条' + (shown.length !== rows.length ? '（筛选自 ' + rows.length + ' 条）' : '');
      if (!pager) return;
      pager.innerHTML = '';
      if (pages <= 1) return;
      var prev = document.createElement('button'); prev.type = 'button'; prev.textContent = '上一页'; prev.disabled = page === 0;
      prev.onclick = function () { page--; render(); };
      var next = document.createElement('button'); next.type = 'button'; next.textContent = '下一页'; next.disabled = page >= pages - 1;
      next.onclick = function () { page++; render(); };
      var info = document.createElement('span'); info.textContent = '第 ' + (page + 1) + ' / ' + pages + ' 页';
      pager.appendChild(prev); pager.appendChild(info); pager.appendChild(next);
    }
    var filter = sec.querySelector('.tbl-filter');
    // The export link carries the filter, so the workbook holds the rows on screen (the server applies
    // the same rule: some cell contains the text, ignoring case).
    var exportLink = sec.querySelector('a.btn[download]');
    var exportBase = exportLink ? exportLink.getAttribute('href') : null;
    // A cell's text without its buttons and choices (what the server's export matches).
    function cellText(c) {
      var t = c.textContent;
      Array.prototype.forEach.call(c.querySelectorAll('button, select, option'), function (b) { t = t.replace(b.textContent, ''); });
      return t.toLowerCase();
    }
    function cellMatch(r, q) {
      return Array.prototype.some.call(r.cells, function (c) { return cellText(c).indexOf(q) >= 0; });
    }
    if (filter) filter.addEventListener('input', function () {
      var q = filter.value.trim().toLowerCase();
      shown = q ? rows.filter(function (r) { return cellMatch(r, q); }) : rows.slice();
      // Never an ID number into an address (the table shows them masked anyway).
      if (exportBase && exportBase.indexOf('data:') !== 0 && !/\d{15}/.test(q)) {
        exportLink.setAttribute('href', q ? exportBase + '&filter=' + encodeURIComponent(filter.value.trim()) : exportBase);
      }
      page = 0; render();
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      function sort() {
        var asc = !th.classList.contains('asc');
        Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.classList.remove('asc', 'desc'); });
        th.classList.add(asc ? 'asc' : 'desc');
        var num = th.getAttribute('data-type') === 'num';
        var key = function (r) {
          var c = r.cells[col]; if (!c) return '';
          return num ? parseFloat(c.getAttribute('data-v') || '0') : c.textContent.trim();
        };
        var cmp = function (a, b) {
          var x = key(a), y = key(b);
          var d = num ? x - y : String(x).localeCompare(String(y), 'zh-CN');
          return asc ? d : -d;
        };
        rows.sort(cmp); shown.sort(cmp); page = 0; render();
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sort(); });
    });
    render();
  }

  function setupChart(el) {
    if (!window.echarts) return;
    var opt;
    try { opt = JSON.parse(el.getAttribute('data-chart')); } catch (e) { return; }
    var links = opt.links; delete opt.links;
    // A horizontal bar chart is as tall as its categories need (one line each), so no name overlaps.
    if (opt.rows) { el.style.height = Math.max(200, opt.rows * 22 + 50) + 'px'; delete opt.rows; }
    var chart = window.echarts.init(el, null, { renderer: 'svg' });
    chart.setOption(opt);
    if (links) chart.on('click', function (p) { var h = links[p.dataIndex]; if (h) window.location.href = h; });
    window.addEventListener('resize', function () { chart.resize(); });
  }

  window.bzPickVisit = function (btn) {
    var f = document.getElementById('settle-form');
    if (!f) return;
    var set = function (n, v) { var e = f.querySelector('[name="' + n + '"]'); if (e) e.value = v; };
    set('mdtrt_id', btn.getAttribute('data-mdtrt'));
    set('med_type', btn.getAttribute('data-medtype'));
    set('begin', btn.getAttribute('data-begin'));
    set('total', btn.getAttribute('data-total'));
    set('fulamt', btn.getAttribute('data-fulamt'));
    set('overlmt', btn.getAttribute('data-overlmt'));
    set('preselfpay', btn.getAttribute('data-preselfpay'));
    f.scrollIntoView({ behavior: 'smooth' });
  };

  // A visit registered by a pre-settlement belongs to its type and dates: change them, and the next
  // action registers a new one.
  document.addEventListener('change', function (e) {
    var f = e.target.form;
    if (f && f.id === 'settle-form' && ['med_type', 'begin'].indexOf(e.target.name) >= 0) {
      var m = document.getElementById('mdtrt_id'); if (m) m.value = '';
    }
  });

  // CSRF: the session's token (in the page's <meta>) goes with every htmx request as a header and into
  // every posted form that lacks it (forms swapped in by htmx included).
  function csrfToken() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute('content') : '';
  }
  document.addEventListener('htmx:configRequest', function (e) {
    var t = csrfToken();
    if (t && e.detail && e.detail.headers) e.detail.headers['X-CSRF-Token'] = t;
  });
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f || !f.getAttribute) return;
    var ask = f.getAttribute('data-confirm');
    if (ask && !window.confirm(ask)) { e.preventDefault(); return; }
    if ((f.getAttribute('method') || '').toLowerCase() !== 'post' || f.querySelector('input[name="csrf"]')) return;
    var t = csrfToken();
    if (!t) return;
    var i = document.createElement('input');
    i.type = 'hidden'; i.name = 'csrf'; i.value = t;
    f.appendChild(i);
  }, true);

  // Behaviour that used to be inline handlers (the Content-Security-Policy allows only this file).
  document.addEventListener('change', function (e) {
    var el = e.target;
    if (el && el.hasAttribute && el.hasAttribute('data-autosubmit') && el.form) el.form.submit();
  });
  document.addEventListener('click', function (e) {
    var el = e.target && e.target.closest ? e.target.closest('[data-pick-visit], [data-print], [data-toggle-nav]') : null;
    if (!el) return;
    if (el.hasAttribute('data-pick-visit')) window.bzPickVisit(el);
    else if (el.hasAttribute('data-print')) window.print();
    else if (el.hasAttribute('data-toggle-nav')) document.body.classList.toggle('nav-open');
  });

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll('section.tbl'), setupTable);
    Array.prototype.forEach.call(document.querySelectorAll('.chart[data-chart]'), setupChart);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
  // New content from htmx, swapped into the target or out of band (the refreshed settlement list).
  document.addEventListener('htmx:load', function (e) {
    var el = e.detail && e.detail.elt;
    if (!el || !el.querySelectorAll) return;
    if (el.matches && el.matches('section.tbl')) setupTable(el);
    Array.prototype.forEach.call(el.querySelectorAll('section.tbl'), setupTable);
  });
})();
