package setup

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strconv"
)

// dict is a property-list dictionary whose keys keep their order (Apple's
// tools do not care; people reading a profile do).
type dict []entry

type entry struct {
	key   string
	value any // string, int, bool, []byte, dict or []any
}

// encodePlist writes v as an XML property list (Apple's PropertyList-1.0
// DTD).
func encodePlist(v dict) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	writeValue(&b, v, 0)
	b.WriteString("</plist>\n")
	return b.Bytes()
}

func indent(b *bytes.Buffer, depth int) {
	for range depth {
		b.WriteByte('\t')
	}
}

func writeValue(b *bytes.Buffer, v any, depth int) {
	indent(b, depth)
	switch x := v.(type) {
	case string:
		b.WriteString("<string>")
		xml.EscapeText(b, []byte(x))
		b.WriteString("</string>\n")
	case int:
		b.WriteString("<integer>" + strconv.Itoa(x) + "</integer>\n")
	case bool:
		if x {
			b.WriteString("<true/>\n")
		} else {
			b.WriteString("<false/>\n")
		}
	case []byte:
		b.WriteString("<data>" + base64.StdEncoding.EncodeToString(x) + "</data>\n")
	case dict:
		b.WriteString("<dict>\n")
		for _, e := range x {
			indent(b, depth+1)
			b.WriteString("<key>")
			xml.EscapeText(b, []byte(e.key))
			b.WriteString("</key>\n")
			writeValue(b, e.value, depth+1)
		}
		indent(b, depth)
		b.WriteString("</dict>\n")
	case []any:
		b.WriteString("<array>\n")
		for _, e := range x {
			writeValue(b, e, depth+1)
		}
		indent(b, depth)
		b.WriteString("</array>\n")
	default:
		panic(fmt.Sprintf("setup: no plist form for %T", v))
	}
}
