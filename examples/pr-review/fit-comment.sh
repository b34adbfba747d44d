#!/bin/sh
# fit-comment.sh: make a dockplan Markdown plan fit in one pull-request
# comment.
#
#   fit-comment.sh [-l LIMIT] [-m MARKER] [-u URL] < plan.md > comment.md
#
# GitHub refuses a comment body longer than 65,536 characters. This script
# counts bytes (never fewer than characters), so a body it lets through
# always fits. MARKER (an HTML comment such as <!-- dockplan-plan -->) goes
# on the first line, so the job can find and update its own comment; it
# counts towards LIMIT.
#
# A plan that fits is copied unchanged. A longer one is cut at a line
# boundary (never inside a UTF-8 character):
#   - after the last whole host section (<details> ... </details>) that fits,
#     so every host shown is shown completely;
#   - only when not even the first host section fits, inside it, closing
#     the open code fence and the <details> element so the rest of the
#     comment still renders.
# The title and the table of counts come first in the plan, so they are
# always kept. A footer says that the plan was cut, names the host sections
# left out, and points to URL (the job's run, which has the whole plan as
# an artifact).
set -eu

limit=65536
marker=''
url=''
while getopts 'l:m:u:' opt; do
	case $opt in
	l) limit=$OPTARG ;;
	m) marker=$OPTARG ;;
	u) url=$OPTARG ;;
	*)
		echo "usage: $0 [-l LIMIT] [-m MARKER] [-u URL] < plan.md > comment.md" >&2
		exit 2
		;;
	esac
done

case $limit in
'' | *[!0-9]*)
	echo "$0: -l wants a number of characters, got '$limit'" >&2
	exit 2
	;;
esac
if [ "$limit" -lt 8192 ]; then
	echo "$0: -l $limit leaves no room for the footer; give at least 8192" >&2
	exit 2
fi

# LC_ALL=C: awk's length() counts bytes, whatever the runner's locale.
LC_ALL=C exec awk -v limit="$limit" -v marker="$marker" -v url="$url" '
# fenceRun returns the run of backticks or tildes (3 or more) that starts
# s after at most 3 spaces, or "" when s does not start a code fence.
function fenceRun(s,    i, c, n) {
	i = 1
	while (i <= 4 && substr(s, i, 1) == " ") i++
	if (i > 4) return ""
	c = substr(s, i, 1)
	if (c != "`" && c != "~") return ""
	n = 0
	while (substr(s, i + n, 1) == c) n++
	return n >= 3 ? substr(s, i, n) : ""
}

# closesFence reports whether s closes the fence f: the same character, at
# least as many, then only spaces.
function closesFence(s, f,    run, rest) {
	run = fenceRun(s)
	if (run == "" || substr(run, 1, 1) != substr(f, 1, 1) || length(run) < length(f)) return 0
	rest = substr(s, index(s, run) + length(run))
	return rest ~ /^[ \t]*$/
}

# closing is what closing a cut after line i costs: the open fence and
# </details>, each on its own line.
function closing(i) {
	return (fence[i] != "" ? length(fence[i]) + 1 : 0) + (depth[i] > 0 ? 11 : 0)
}

{
	line[NR] = $0
	used[NR] = (NR > 1 ? used[NR - 1] : 0) + length($0) + 1
	# fence[i] and depth[i]: the open code fence and <details> depth after line i.
	f = (NR > 1 ? fence[NR - 1] : "")
	d = (NR > 1 ? depth[NR - 1] : 0)
	if (f != "") {
		if (closesFence($0, f)) f = ""
	} else if (fenceRun($0) != "") {
		f = fenceRun($0)
	} else {
		if ($0 ~ /^<details>/) {
			d++
			summary = $0
			sub(/^<details><summary>/, "", summary)
			sub(/<\/summary>.*$/, "", summary)
			sections++
			sectionTitle[sections] = summary
			sectionStart[sections] = NR
		}
		if ($0 ~ /<\/details>/ && d > 0) d--
	}
	fence[NR] = f
	depth[NR] = d
}

END {
	head = (marker != "" ? length(marker) + 1 : 0)
	if (head + used[NR] <= limit) {
		if (marker != "") print marker
		for (i = 1; i <= NR; i++) print line[i]
		exit 0
	}
	# Room for the plan: the rest is for the footer (a few sentences and
	# the titles of the sections left out, at most 4 KiB together) and the
	# lines that close a section cut in the middle.
	budget = limit - head - 4096 - 1024
	firstSection = (sections > 0 ? sectionStart[1] : NR + 1)
	cut = 0
	for (i = 1; i <= NR && used[i] <= budget; i++) {
		if (fence[i] == "" && depth[i] == 0) cut = i
	}
	partial = 0
	if (cut < firstSection && sections > 0 && used[firstSection] <= budget) {
		# Not even the first host section fits whole: cut inside it.
		for (cut = firstSection; cut < NR && used[cut + 1] + closing(cut + 1) <= budget; cut++) {}
		partial = 1
	}

	if (marker != "") print marker
	for (i = 1; i <= cut; i++) print line[i]
	if (partial) {
		if (fence[cut] != "") print fence[cut]
		if (depth[cut] > 0) print "</details>"
	}
	footer = "\n---\n\n**This plan is too long for one comment** (" used[NR] " bytes; a comment takes at most " limit " characters), so it was cut."
	if (partial) footer = footer " The section of " sectionTitle[1] " stops after its first " (cut - firstSection + 1) " lines."
	footer = footer "\n"
	list = ""
	if (partial) list = list "- the rest of " sectionTitle[1] "\n"
	left = 0
	for (s = 1; s <= sections; s++) if (sectionStart[s] > cut) left++
	shown = 0
	for (s = 1; s <= sections; s++) {
		if (sectionStart[s] <= cut) continue
		item = "- " sectionTitle[s] "\n"
		if (length(list) + length(item) > 3072) break
		list = list item
		shown++
	}
	if (shown < left) list = list "- and " (left - shown) " more host sections\n"
	if (list != "") footer = footer "\nNot shown here:\n\n" list
	if (url != "") footer = footer "\nThe whole plan is attached to [this run](" url ").\n"
	else footer = footer "\nThe whole plan is attached to this run.\n"
	printf "%s", footer
}
'
