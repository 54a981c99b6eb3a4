// Package pdftext reads back the text an invoicepdf document shows, for
// tests: it inflates the page content streams and returns the strings the
// Tj and TJ operators show, in order, one a line, decoded from cp1252 to
// UTF-8.
//
// It imports nothing of the project, so tests in package agents (which
// invoicepdf imports) can parse attachments without an import cycle;
// invoicepdf.Text is the same function. It is not a general PDF parser: it
// reads what fpdf writes (a "N 0 obj" line, a one-line stream dictionary
// with a direct /Length, the literal strings of the core fonts).
package pdftext

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// maxInflated bounds one inflated content stream, so that a hostile input
// cannot exhaust memory.
const maxInflated = 64 << 20

// streamStart matches the start of a stream object as fpdf writes it.
var streamStart = regexp.MustCompile(`(?m)^\d+ 0 obj\n<<(/Filter /FlateDecode )?/Length (\d+)>>\nstream\n`)

// Text returns the strings shown on every page of pdf, in content order,
// joined with newlines.
func Text(pdf []byte) (string, error) {
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		return "", errors.New("pdftext: not a PDF")
	}
	var shown []string
	streams := 0
	pos := 0
	for {
		loc := streamStart.FindSubmatchIndex(pdf[pos:])
		if loc == nil {
			break
		}
		start := pos + loc[1]
		n, err := strconv.Atoi(string(pdf[pos+loc[4] : pos+loc[5]]))
		if err != nil || n < 0 || n > len(pdf)-start {
			return "", fmt.Errorf("pdftext: bad stream length at offset %d", pos+loc[0])
		}
		data := pdf[start : start+n]
		if !bytes.HasPrefix(pdf[start+n:], []byte("\nendstream")) {
			return "", fmt.Errorf("pdftext: stream at offset %d does not end where its length says", pos+loc[0])
		}
		if loc[2] >= 0 { // FlateDecode
			zr, err := zlib.NewReader(bytes.NewReader(data))
			if err != nil {
				return "", fmt.Errorf("pdftext: inflate stream at offset %d: %w", pos+loc[0], err)
			}
			inflated, err := io.ReadAll(io.LimitReader(zr, maxInflated+1))
			if err != nil {
				return "", fmt.Errorf("pdftext: inflate stream at offset %d: %w", pos+loc[0], err)
			}
			if len(inflated) > maxInflated {
				return "", fmt.Errorf("pdftext: stream at offset %d inflates beyond %d bytes", pos+loc[0], maxInflated)
			}
			data = inflated
		}
		strs, err := shownStrings(data)
		if err != nil {
			return "", err
		}
		shown = append(shown, strs...)
		streams++
		pos = start + n
	}
	if streams == 0 {
		return "", errors.New("pdftext: no content stream")
	}
	return strings.Join(shown, "\n"), nil
}

// shownStrings returns the operands of the text-showing operators of one
// content stream.
func shownStrings(c []byte) ([]string, error) {
	var out []string
	var operands []string // string operands since the last operator
	var inArray bool
	var array strings.Builder
	for i := 0; i < len(c); {
		ch := c[i]
		switch {
		case isSpace(ch):
			i++
		case ch == '%':
			for i < len(c) && c[i] != '\n' && c[i] != '\r' {
				i++
			}
		case ch == '(':
			s, next, err := literal(c, i)
			if err != nil {
				return nil, err
			}
			if inArray {
				array.WriteString(s)
			} else {
				operands = append(operands, s)
			}
			i = next
		case ch == '<' && i+1 < len(c) && c[i+1] == '<':
			i += 2
		case ch == '>' && i+1 < len(c) && c[i+1] == '>':
			i += 2
		case ch == '<':
			end := bytes.IndexByte(c[i:], '>')
			if end < 0 {
				return nil, errors.New("pdftext: unterminated hex string")
			}
			s := hexString(c[i+1 : i+end])
			if inArray {
				array.WriteString(s)
			} else {
				operands = append(operands, s)
			}
			i += end + 1
		case ch == '[':
			inArray = true
			array.Reset()
			i++
		case ch == ']':
			if inArray {
				operands = append(operands, array.String())
			}
			inArray = false
			i++
		default:
			j := i
			for j < len(c) && !isSpace(c[j]) && !isDelim(c[j]) {
				j++
			}
			if j == i { // a stray delimiter
				j++
			}
			tok := string(c[i:j])
			i = j
			if isOperand(tok) || inArray {
				continue
			}
			switch tok {
			case "Tj", "TJ", "'", `"`:
				if len(operands) > 0 {
					out = append(out, decode(operands[len(operands)-1]))
				}
			}
			operands = operands[:0]
		}
	}
	return out, nil
}

// literal reads the literal string starting at c[i] == '(' and returns its
// bytes and the index after its closing parenthesis.
func literal(c []byte, i int) (string, int, error) {
	var b strings.Builder
	depth := 0
	for i++; i < len(c); i++ {
		ch := c[i]
		switch ch {
		case '\\':
			i++
			if i >= len(c) {
				return "", 0, errors.New("pdftext: unterminated string")
			}
			switch e := c[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case '\r':
				if i+1 < len(c) && c[i+1] == '\n' {
					i++
				}
			case '\n':
			default:
				if e >= '0' && e <= '7' {
					v := 0
					k := 0
					for ; k < 3 && i+k < len(c) && c[i+k] >= '0' && c[i+k] <= '7'; k++ {
						v = v*8 + int(c[i+k]-'0')
					}
					i += k - 1
					b.WriteByte(byte(v))
				} else {
					b.WriteByte(e) // \( \) \\ and any other escaped byte
				}
			}
		case '(':
			depth++
			b.WriteByte(ch)
		case ')':
			if depth == 0 {
				return b.String(), i + 1, nil
			}
			depth--
			b.WriteByte(ch)
		default:
			b.WriteByte(ch)
		}
	}
	return "", 0, errors.New("pdftext: unterminated string")
}

func hexString(h []byte) string {
	var digits []byte
	for _, ch := range h {
		if v, ok := hexVal(ch); ok {
			digits = append(digits, v)
		}
	}
	if len(digits)%2 == 1 {
		digits = append(digits, 0)
	}
	out := make([]byte, len(digits)/2)
	for i := range out {
		out[i] = digits[2*i]<<4 | digits[2*i+1]
	}
	return string(out)
}

func hexVal(ch byte) (byte, bool) {
	switch {
	case ch >= '0' && ch <= '9':
		return ch - '0', true
	case ch >= 'a' && ch <= 'f':
		return ch - 'a' + 10, true
	case ch >= 'A' && ch <= 'F':
		return ch - 'A' + 10, true
	}
	return 0, false
}

func isSpace(ch byte) bool {
	return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t' || ch == '\f' || ch == 0
}

func isDelim(ch byte) bool {
	return strings.IndexByte("()<>[]{}/%", ch) >= 0
}

// isOperand reports whether tok is a number or a name, not an operator.
func isOperand(tok string) bool {
	if tok == "" {
		return true
	}
	if tok[0] == '/' || tok == "true" || tok == "false" || tok == "null" {
		return true
	}
	_, err := strconv.ParseFloat(tok, 64)
	return err == nil
}

// cp1252High is what bytes 0x80–0x9F of Windows-1252 stand for (0 where
// the code page leaves the byte undefined); bytes from 0xA0 up are Latin-1.
var cp1252High = [32]rune{
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
}

// Decode1252 returns the UTF-8 text of cp1252 bytes s; an undefined byte
// reads as '?'.
func Decode1252(s string) string { return decode(s) }

func decode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch < 0x80:
			b.WriteByte(ch)
		case ch < 0xA0:
			if r := cp1252High[ch-0x80]; r != 0 {
				b.WriteRune(r)
			} else {
				b.WriteByte('?')
			}
		default:
			b.WriteRune(rune(ch))
		}
	}
	return b.String()
}
