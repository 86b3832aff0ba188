// Makes Material draw ```mermaid diagrams with the Mermaid served by this site
// (assets/vendor/mermaid/), loaded only on pages that have a diagram.
// Material uses the global `mermaid` when one is defined and fetches it from a CDN otherwise;
// this stand-in defines it, and loads the real library on the first diagram it is asked to draw.
(() => {
  const source = new URL("../assets/vendor/mermaid/mermaid.min.js", document.currentScript.src);
  let settings = {};
  let library = null;
  const load = () => {
    library ??= new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = source.href;
      script.onload = () => {
        window.mermaid.initialize(settings);
        resolve(window.mermaid);
      };
      script.onerror = () => reject(new Error(`could not load ${source.href}`));
      document.head.appendChild(script);
    });
    return library;
  };
  window.mermaid = {
    initialize: (options) => {
      settings = options;
    },
    render: (id, text) => load().then((mermaid) => mermaid.render(id, text)),
  };
})();
