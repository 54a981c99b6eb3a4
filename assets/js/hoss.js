// HossAgent's own script, loaded from /assets like htmx (the CSP forbids
// inline script). It only enhances: every page works without it.
//
//  - Action results (.result[data-fade]) get a dismiss button's behaviour
//    and fade after data-fade milliseconds, unless the pointer or focus is
//    on them; with prefers-reduced-motion they go without the animation.
//  - Copy buttons (button[data-copy="<input id>"]) copy that input's value.
//  - Phone tables: each cell of a table.data gets its column's name as
//    data-label, which the stylesheet shows when rows stack.
(() => {
	"use strict";
	const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
	const scheduled = new WeakSet();
	// askedBy remembers, per result slot, the button whose answer lands in it.
	const askedBy = new WeakMap();

	// fadeDelay is the result's own delay; a page may shorten every delay
	// with <html data-result-fade-ms> (the browser tests do).
	function fadeDelay(result) {
		const override = Number(document.documentElement.dataset.resultFadeMs);
		if (override > 0) return override;
		const own = Number(result.dataset.fade);
		return own > 0 ? own : 0;
	}

	// dismiss removes a result; focus on its button goes back to the control
	// that asked for it (the slot's data-for), or else to the slot's form.
	function dismiss(result) {
		if (!result.isConnected) return;
		const slot = result.closest(".action-slot");
		const hadFocus = result.contains(document.activeElement);
		result.remove();
		if (slot && !slot.querySelector(".result")) slot.replaceChildren();
		if (hadFocus && slot) {
			const asked = askedBy.get(slot);
			const back = (asked?.isConnected && asked) ||
				slot.parentElement?.querySelector("button:not([disabled]), input:not([type=hidden])");
			back?.focus();
		}
	}

	function fade(result) {
		if (!result.isConnected) return;
		if (result.matches(":hover") || result.contains(document.activeElement)) {
			setTimeout(() => fade(result), 2000); // not while someone reads it
			return;
		}
		if (reducedMotion.matches) {
			dismiss(result);
			return;
		}
		result.classList.add("fading");
		setTimeout(() => dismiss(result), 700);
	}

	function schedule(root) {
		const results = root.matches?.(".result[data-fade]") ? [root] : root.querySelectorAll?.(".result[data-fade]") || [];
		for (const r of results) {
			if (scheduled.has(r)) continue;
			scheduled.add(r);
			const ms = fadeDelay(r);
			if (ms > 0) setTimeout(() => fade(r), ms);
		}
	}

	async function copy(button) {
		const input = document.getElementById(button.dataset.copy);
		if (!input) return;
		const status = document.getElementById(button.dataset.copy + "-copied");
		let ok = false;
		try {
			await navigator.clipboard.writeText(input.value);
			ok = true;
		} catch {
			input.select();
			ok = document.execCommand("copy");
		}
		if (status) status.textContent = ok ? "Copied." : "Copy failed: select the link and copy it by hand.";
	}

	document.addEventListener("click", (e) => {
		const dismissButton = e.target.closest?.(".result-dismiss");
		if (dismissButton) {
			dismiss(dismissButton.closest(".result"));
			return;
		}
		const copyButton = e.target.closest?.("button[data-copy]");
		if (copyButton) {
			copy(copyButton);
			return;
		}
		const asking = e.target.closest?.("button[hx-target^='#']");
		const slot = asking && document.querySelector(asking.getAttribute("hx-target"));
		if (slot?.classList.contains("action-slot")) askedBy.set(slot, asking);
	});

	function labelCells(root) {
		const tables = root.matches?.("table.data") ? [root] : root.querySelectorAll?.("table.data") || [];
		for (const table of tables) {
			const heads = [...table.querySelectorAll(":scope > thead > tr > th")].map((th) => th.textContent.replace(/\s+/g, " ").trim());
			if (heads.length === 0) continue;
			for (const tr of table.querySelectorAll(":scope > tbody > tr, :scope > tfoot > tr")) {
				let col = 0;
				for (const cell of tr.children) {
					const span = cell.colSpan || 1;
					if (span === 1 && heads[col] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[col]);
					col += span;
				}
			}
		}
	}

	function enhance(root) {
		schedule(root);
		labelCells(root.closest?.("table.data") || root);
	}

	function start() {
		enhance(document.body);
		// A live update morphs the rows in place: kept cells lose the
		// data-label set here (the server's markup has none) without any
		// node being added, so every swap labels its tables again.
		document.addEventListener("htmx:after:swap", () => labelCells(document.body));
		new MutationObserver((records) => {
			for (const rec of records) {
				for (const node of rec.addedNodes) {
					if (node.nodeType === Node.ELEMENT_NODE) enhance(node);
				}
			}
		}).observe(document.body, { childList: true, subtree: true });
	}

	if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
	else start();
})();
