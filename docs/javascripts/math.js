// Typesets the math of each page with KaTeX (served from assets/vendor/katex/).
// pymdownx.arithmatex (generic mode) turns `$...$` into <span class="arithmatex">\(...\)</span>
// and `$$...$$` into <div class="arithmatex">\[...\]</div>; only those elements are rendered.
// `document$` is Material's page-load stream: it also fires after instant navigation.
document$.subscribe(({ body }) => {
  for (const element of body.querySelectorAll(".arithmatex")) {
    const text = element.textContent.trim();
    const display = text.startsWith("\\[");
    const tex = text.slice(2, -2);
    katex.render(tex, element, { displayMode: display, throwOnError: false });
  }
});
