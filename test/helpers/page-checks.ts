/**
 * Hand-made, axe-like checks of a page in Chromium: labels, button text, alt, heading order, lang, title, contrast of
 * every visible text (WCAG 2, >= 4.5:1), and the page's width (no sideways scrolling).
 */
import type { Page } from 'playwright-core';

/** What the hand-made accessibility check found wrong on the page (empty: nothing). */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    if (!document.documentElement.lang) problems.push('no lang on <html>');
    if (!document.title) problems.push('no <title>');
    const visible = (el: Element) => {
      const style = getComputedStyle(el);
      const box = el.getBoundingClientRect();
      return style.display !== 'none' && style.visibility !== 'hidden' && box.width > 0 && box.height > 0;
    };
    for (const input of Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))) {
      const id = input.getAttribute('id');
      const label = id ? document.querySelector(`label[for="${id}"]`) : null;
      if (!label?.textContent?.trim() && !input.getAttribute('aria-label'))
        problems.push(`input ${input.getAttribute('name')} has no label`);
    }
    for (const button of Array.from(document.querySelectorAll('button'))) {
      if (!button.textContent?.trim()) problems.push('a button without text');
    }
    for (const img of Array.from(document.querySelectorAll('img'))) {
      if (!img.hasAttribute('alt')) problems.push(`img ${img.getAttribute('src')} has no alt`);
    }
    const levels = Array.from(document.querySelectorAll('h1, h2, h3, h4, h5, h6')).map((h) => Number(h.tagName[1]));
    if (levels[0] !== 1) problems.push(`first heading is h${levels[0]}`);
    if (levels.filter((l) => l === 1).length !== 1) problems.push('not exactly one h1');
    levels.forEach((level, i) => {
      if (i > 0 && level > levels[i - 1]! + 1) problems.push(`heading h${level} after h${levels[i - 1]}`);
    });
    // WCAG contrast of every visible text against the first opaque background behind it.
    const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]: number[]) => {
      const f = (v: number) => ((v /= 255) <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
    };
    const background = (el: Element | null): number[] => {
      for (; el; el = el.parentElement) {
        const c = rgb(getComputedStyle(el).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3]! > 0.9)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    for (const el of Array.from(document.querySelectorAll('body *'))) {
      const text = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent!.trim());
      if (!text || !visible(el)) continue;
      const fg = lum(rgb(getComputedStyle(el).color));
      const bg = lum(background(el));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} of "${el.textContent.trim().slice(0, 30)}"`);
    }
    return problems;
  });
}

/** Whether the page scrolls sideways (at 375 px it must not). */
export const scrollWidth = (page: Page) => page.evaluate(() => document.scrollingElement!.scrollWidth);
