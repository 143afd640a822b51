/* A small Markdown renderer that is safe by construction: the model's text is
 * HTML-escaped first, then only these constructs become markup: fenced code,
 * headings, lists, paragraphs, inline code, bold, italics and http(s) links.
 * Nothing the model writes can become a tag, an attribute or a script. */
(function () {
  "use strict";
  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  function inline(escaped) {
    var codes = [];
    var out = escaped.replace(/`([^`\n]+)`/g, function (_, code) {
      codes.push("<code>" + code + "</code>");
      return "\u0000" + (codes.length - 1) + "\u0000";
    });
    out = out.replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
      .replace(/(^|[^*])\*([^*\n]+)\*/g, "$1<em>$2</em>")
      .replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s()]+)\)/g,
        '<a href="$2" target="_blank" rel="noopener noreferrer nofollow">$1</a>');
    return out.replace(/\u0000(\d+)\u0000/g, function (_, i) { return codes[+i]; });
  }
  function render(text) {
    var lines = escapeHtml(text || "").split("\n");
    var html = [], paragraph = [], list = null, i = 0;
    function flushParagraph() {
      if (paragraph.length) { html.push("<p>" + inline(paragraph.join("<br>")) + "</p>"); paragraph = []; }
    }
    function flushList() { if (list) { html.push("</" + list + ">"); list = null; } }
    while (i < lines.length) {
      var line = lines[i];
      if (/^```/.test(line)) {
        flushParagraph(); flushList();
        var code = [];
        i++;
        while (i < lines.length && !/^```/.test(lines[i])) { code.push(lines[i]); i++; }
        html.push("<pre><code>" + code.join("\n") + "</code></pre>");
        i++;
        continue;
      }
      var heading = /^(#{1,6})\s+(.*)$/.exec(line);
      var bullet = /^\s*[-*]\s+(.*)$/.exec(line);
      var numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
      if (heading) {
        flushParagraph(); flushList();
        var level = heading[1].length;
        html.push("<h" + level + ">" + inline(heading[2]) + "</h" + level + ">");
      } else if (bullet || numbered) {
        flushParagraph();
        var kind = bullet ? "ul" : "ol";
        if (list !== kind) { flushList(); html.push("<" + kind + ">"); list = kind; }
        html.push("<li>" + inline((bullet || numbered)[1]) + "</li>");
      } else if (!line.trim()) {
        flushParagraph(); flushList();
      } else {
        flushList();
        paragraph.push(line);
      }
      i++;
    }
    flushParagraph(); flushList();
    return html.join("");
  }
  window.renderMarkdown = render;
  window.escapeHtml = escapeHtml;
})();
