package codec_test

import (
	"fmt"
	"os"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/codec"
)

func ExampleDecodeRequest() {
	body := `<command>
  <node>http://jabber.org/protocol/admin#end-user-session</node>
  <fields>
    <item>
      <var>accountjids</var>
      <value>
        <item>test@domain.com</item>
      </value>
    </item>
  </fields>
</command>`
	f, err := codec.Negotiate("application/xml", "", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	req, f, err := codec.DecodeRequest(strings.NewReader(body), f)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f, req.Node)
	fmt.Println(req.Fields[0].Var, req.Fields[0].Values)
	// Output:
	// tigase-xml http://jabber.org/protocol/admin#end-user-session
	// accountjids [test@domain.com]
}

func ExampleEncodeResponse() {
	resp := adhoc.Response{
		Node:   "http://jabber.org/protocol/admin#end-user-session",
		Status: adhoc.StatusCompleted,
		Form: &adhoc.Form{Type: adhoc.FormTypeResult, Fields: []adhoc.Field{{
			Var:    "Notes",
			Type:   adhoc.FieldTextMulti,
			Values: []string{"Operation successful for user test@domain.com/resource"},
		}}},
	}
	component := jid.MustParse("sess-man@domain.com")
	if err := codec.EncodeResponse(os.Stdout, codec.TigaseJSON, component, resp); err != nil {
		fmt.Println(err)
	}
	if err := codec.EncodeResponse(os.Stdout, codec.TigaseXML, component, resp); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {
	//   "command": {
	//     "jid": "sess-man@domain.com",
	//     "node": "http://jabber.org/protocol/admin#end-user-session",
	//     "fields": [
	//       {
	//         "var": "Notes",
	//         "type": "text-multi",
	//         "value": [
	//           "Operation successful for user test@domain.com/resource"
	//         ]
	//       }
	//     ]
	//   }
	// }
	// <command>
	//   <jid>sess-man@domain.com</jid>
	//   <node>http://jabber.org/protocol/admin#end-user-session</node>
	//   <fields>
	//     <item>
	//       <var>Notes</var>
	//       <type>text-multi</type>
	//       <value>Operation successful for user test@domain.com/resource</value>
	//     </item>
	//   </fields>
	// </command>
}

func ExampleEncodeError() {
	forbidden := &adhoc.Error{Condition: stanza.Forbidden, Text: "Only administrators may run this command."}
	if err := codec.EncodeError(os.Stdout, codec.TigaseJSON, forbidden); err != nil {
		fmt.Println(err)
	}
	if err := codec.EncodeError(os.Stdout, codec.TigaseXML, adhoc.ErrBadSessionID); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {
	//   "error": "Only administrators may run this command.",
	//   "condition": "forbidden",
	//   "type": "auth"
	// }
	// <error>
	//   <text>The session is not known; start the command again.</text>
	//   <condition>bad-request</condition>
	//   <type>modify</type>
	//   <specific>bad-sessionid</specific>
	// </error>
}

func ExampleNegotiate() {
	for _, h := range [][3]string{
		{"application/json; charset=utf-8", "", ""},
		{"", "json", ""},
		{"", "", "application/xml;q=0.5, application/json"},
		{"", "", ""},
		{"text/plain", "", "application/json"},
	} {
		f, err := codec.Negotiate(h[0], h[1], h[2])
		fmt.Println(f, f.ContentType(), err != nil)
	}
	// Output:
	// tigase-json application/json; charset=utf-8 false
	// tigase-json application/json; charset=utf-8 false
	// tigase-json application/json; charset=utf-8 false
	// tigase-xml application/xml; charset=utf-8 false
	// tigase-json application/json; charset=utf-8 true
}

func ExampleEncodeItems() {
	reg := adhoc.NewRegistry(adhoc.RegistryConfig{})
	component := jid.MustParse("sess-man@localhost")
	infos, err := reg.Commands(component, adhoc.Caller{Admin: true})
	fmt.Println(len(infos), adhoc.AsError(err).Condition)

	items := codec.NewItems(component, []adhoc.Info{{Node: "http://jabber.org/protocol/admin#end-user-session", Name: "End User Session"}})
	if err := codec.EncodeItems(os.Stdout, codec.TigaseJSON, items); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 0 item-not-found
	// {
	//   "items": [
	//     {
	//       "jid": "sess-man@localhost",
	//       "node": "http://jabber.org/protocol/admin#end-user-session",
	//       "name": "End User Session"
	//     }
	//   ]
	// }
}
