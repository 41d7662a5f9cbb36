"""Template helpers for the labeling pages: safe markdown, tier names."""
import html
import re

import markdown_it
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

# Images are dropped: a prompt must not make annotators' browsers fetch remote URLs.
# Raw HTML in the source is escaped by markdown-it (html=False); nh3 then drops anything a
# renderer bug or a crafted link could still smuggle through (event handlers, javascript: URLs).
_markdown = markdown_it.MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
_ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}


def render_markdown(text) -> str:
    html = _markdown.render(str(text or ""))
    return nh3.clean(
        html, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow", filter_style_properties={"text-align"},
    )


@register.filter(name="markdown")
def markdown_filter(text):
    """Markdown to sanitized HTML: no raw HTML from the text survives unescaped."""
    return mark_safe(render_markdown(text))


@register.filter
def plain_text(text, length=90):
    """Markdown as one line of plain text (no markup, no code fences), cut to `length` characters."""
    flat = html.unescape(nh3.clean(_markdown.render(str(text or "")), tags=set()))
    flat = re.sub(r"\s+", " ", flat).strip()
    length = int(length)
    return flat if len(flat) <= length else flat[:length - 1].rstrip() + "…"


@register.filter
def words(name):
    """'factually_wrong' -> 'factually wrong'."""
    return str(name).replace("_", " ")


@register.filter
def seconds(milliseconds):
    """4200 -> '4.2 s'."""
    if milliseconds is None:
        return "–"
    return f"{float(milliseconds) / 1000:.1f} s"
