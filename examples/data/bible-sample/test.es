CANCIÓN de canciones, la cual es de Salomón.
¡Oh si él me besara con ósculos de su boca! porque mejores son tus amores que el vino.
Por el olor de tus suaves ungüentos, (ungüento derramado es tu nombre,) por eso las doncellas te amaron.
Llévame en pos de ti, correremos. Metióme el rey en sus cámaras: nos gozaremos y alegraremos en ti; acordarémonos de tus amores más que del vino: los rectos te aman.
Morena soy, oh hijas de Jerusalem, mas codiciable; como las cabañas de Cedar, como las tiendas de Salomón.
No miréis en que soy morena, porque el sol me miró. Los hijos de mi madre se airaron contra mí, hiciéronme guarda de viñas; y mi viña, que era mía, no guardé.
Hazme saber, ó tú á quien ama mi alma, dónde repastas, dónde haces tener majada al medio día: porque, ¿por qué había yo de estar como vagueando tras los rebaños de tus compañeros?
Si tú no lo sabes, oh hermosa entre las mujeres, sal, yéndote por las huellas del rebaño, y apacienta tus cabritas junto á las cabañas de los pastores.
A yegua de los carros de Faraón te he comparado, amiga mía.
Hermosas son tus mejillas entre los pendientes, tu cuello entre los collares.
Zarcillos de oro te haremos, con clavos de plata.
Mientras que el rey estaba en su reclinatorio, mi nardo dió su olor.
Mi amado es para mí un manojito de mirra, que reposa entre mis pechos.
Racimo de copher en las viñas de Engadi es para mí mi amado.
He aquí que tú eres hermosa, amiga mía; he aquí que eres bella: tus ojos de paloma.
He aquí que tú eres hermoso, amado mío, y suave: nuestro lecho también florido.
Las vigas de nuestra casa son de cedro, y de ciprés los artesonados.
YO soy la rosa de Sarón, y el lirio de los valles.
Como el lirio entre las espinas, así es mi amiga entre las doncellas.
Como el manzano entre los árboles silvestres, así es mi amado entre los mancebos: bajo la sombra del deseado me senté, y su fruto fué dulce á mi paladar.
Llevóme á la cámara del vino, y su bandera sobre mí fué amor.
Sustentadme con frascos, corroboradme con manzanas; porque estoy enferma de amor.
Su izquierda esté debajo de mi cabeza, y su derecha me abrace.
Yo os conjuro, oh doncellas de Jerusalem, por las gamas y por las ciervas del campo, que no despertéis ni hagáis velar al amor, hasta que quiera.
¡La voz de mi amado! He aquí él viene saltando sobre los montes, brincando sobre los collados.
Mi amado es semejante al gamo, ó al cabrito de los ciervos. Helo aquí, está tras nuestra pared, mirando por las ventanas, mostrándose por las rejas.
Mi amado habló, y me dijo: Levántate, oh amiga mía, hermosa mía, y vente.
Porque he aquí ha pasado el invierno, hase mudado, la lluvia se fué;
Hanse mostrado las flores en la tierra, el tiempo de la canción es venido, y en nuestro país se ha oído la voz de la tórtola;
La higuera ha echado sus higos, y las vides en cierne dieron olor: levántate, oh amiga mía, hermosa mía, y vente.
Paloma mía, que estás en los agujeros de la peña, en lo escondido de escarpados parajes, muéstrame tu rostro, hazme oir tu voz; porque dulce es la voz tuya, y hermoso tu aspecto.
Cazadnos las zorras, las zorras pequeñas, que echan á perder las viñas; pues que nuestras viñas están en cierne.
Mi amado es mío, y yo suya; él apacienta entre lirios.
Hasta que apunte el día, y huyan las sombras, tórnate, amado mío; sé semejante al gamo, ó al cabrito de los ciervos, sobre los montes de Bether.
POR las noches busqué en mi lecho al que ama mi alma: busquélo, y no lo hallé.
Levantaréme ahora, y rodearé por la ciudad; por las calles y por las plazas buscaré al que ama mi alma: busquélo, y no lo hallé.
Halláronme los guardas que rondan la ciudad, y díjeles: ¿Habéis visto al que ama mi alma?
Pasando de ellos un poco, hallé luego al que mi alma ama: trabé de él, y no lo dejé, hasta que lo metí en casa de mi madre, y en la cámara de la que me engendró.
Yo os conjuro, oh doncellas de Jerusalem, por las gamas y por las ciervas del campo, que no despertéis ni hagáis velar al amor, hasta que quiera.
¿Quién es ésta que sube del desierto como columnita de humo, sahumada de mirra y de incienso, y de todos polvos aromáticos?
He aquí es la litera de Salomón: sesenta valientes la rodean, de los fuertes de Israel.
Todos ellos tienen espadas, diestros en la guerra; cada uno su espada sobre su muslo, por los temores de la noche.
El rey Salomón se hizo una carroza de madera del Líbano.
Sus columnas hizo de plata, su respaldo de oro, su cielo de grana, su interior enlosado de amor, por las doncellas de Jerusalem.
Salid, oh doncellas de Sión, y ved al rey Salomón con la corona con que le coronó su madre el día de su desposorio, y el día del gozo de su corazón.
HE aquí que tú eres hermosa, amiga mía; he aquí que tú eres hermosa; tus ojos entre tus guedejas como de paloma; tus cabellos como manada de cabras, que se muestran desde el monte de Galaad.
Tus dientes, como manadas de trasquiladas ovejas, que suben del lavadero, todas con crías mellizas, y ninguna entre ellas estéril.
Tus labios, como un hilo de grana, y tu habla hermosa; tus sienes, como cachos de granada á la parte adentro de tus guedejas.
Tu cuello, como la torre de David, edificada para muestra; mil escudos están colgados de ella, todos escudos de valientes.
Tus dos pechos, como dos cabritos mellizos de gama, que son apacentados entre azucenas.
Hasta que apunte el día y huyan las sombras, iréme al monte de la mirra, y al collado del incienso.
Toda tú eres hermosa, amiga mía, y en ti no hay mancha.
Conmigo del Líbano, oh esposa, conmigo ven del Líbano: mira desde la cumbre de Amana, desde la cumbre de Senir y de Hermón, desde las guaridas de los leones, desde los montes de los tigres.
Prendiste mi corazón, hermana, esposa mía; has preso mi corazón con uno de tus ojos, con una gargantilla de tu cuello.
¡Cuán hermosos son tus amores, hermana, esposa mía! ¡cuánto mejores que el vino tus amores, y el olor de tus ungüentos que todas las especias aromáticas!
Como panal de miel destilan tus labios, oh esposa; miel y leche hay debajo de tu lengua; y el olor de tus vestidos como el olor del Líbano.
Huerto cerrado eres, mi hermana, esposa mía; fuente cerrada, fuente sellada.
Tus renuevos paraíso de granados, con frutos suaves, de cámphoras y nardos,
Nardo y azafrán, caña aromática y canela, con todos los árboles de incienso; mirra y áloes, con todas las principales especias.
Fuente de huertos, pozo de aguas vivas, que corren del Líbano.
Levántate, Aquilón, y ven, Austro: sopla mi huerto, despréndanse sus aromas. Venga mi amado á su huerto, y coma de su dulce fruta.
YO vine á mi huerto, oh hermana, esposa mía: cogido he mi mirra y mis aromas; he comido mi panal y mi miel, mi vino y mi leche he bebido. Comed, amigos; bebed, amados, y embriagaos.
Yo dormía, pero mi corazón velaba: la voz de mi amado que llamaba: Abreme, hermana mía, amiga mía, paloma mía, perfecta mía; porque mi cabeza está llena de rocío, mis cabellos de las gotas de la noche.
Heme desnudado mi ropa; ¿cómo la tengo de vestir? He lavado mis pies; ¿cómo los tengo de ensuciar?
Mi amado metió su mano por el agujero, y mis entrañas se conmovieron dentro de mí.
Yo me levanté para abrir á mi amado, y mis manos gotearon mirra, y mis dedos mirra que corría sobre las aldabas del candado.
Abrí yo á mi amado; mas mi amado se había ido, había ya pasado: y tras su hablar salió mi alma: busquélo, y no lo hallé; llamélo, y no me respondió.
Halláronme los guardas que rondan la ciudad: hiriéronme, llagáronme, quitáronme mi manto de encima los guardas de los muros.
Yo os conjuro, oh doncellas de Jerusalem, si hallareis á mi amado, que le hagáis saber como de amor estoy enferma.
¿Qué es tu amado más que otro amado, oh la más hermosa de todas las mujeres? ¿qué es tu amado más que otro amado, que así nos conjuras?
Mi amado es blanco y rubio, señalado entre diez mil.
Su cabeza, como oro finísimo; sus cabellos crespos, negros como el cuervo.
Sus ojos, como palomas junto á los arroyos de las aguas, que se lavan con leche, y á la perfección colocados.
Sus mejillas, como una era de especias aromáticas, como fragantes flores: sus labios, como lirios que destilan mirra que trasciende.
Sus manos, como anillos de oro engastados de jacintos: su vientre, como claro marfil cubierto de zafiros.
Sus piernas, como columnas de mármol fundadas sobre basas de fino oro: su aspecto como el Líbano, escogido como los cedros.
Su paladar, dulcísimo: y todo él codiciable. Tal es mi amado, tal es mi amigo, oh doncellas de Jerusalem.
¿DÓNDE se ha ido tu amado, oh la más hermosa de todas las mujeres? ¿Adónde se apartó tu amado, y le buscaremos contigo?
Mi amado descendió á su huerto, á las eras de los aromas, para apacentar en los huertos, y para coger los lirios.
Yo soy de mi amado, y mi amado es mío: él apacienta entre los lirios.
Hermosa eres tú, oh amiga mía, como Tirsa; de desear, como Jerusalem; imponente como ejércitos en orden.
Aparta tus ojos de delante de mí, porque ellos me vencieron. Tu cabello es como manada de cabras, que se muestran en Galaad.
Tus dientes, como manada de ovejas que suben del lavadero, todas con crías mellizas, y estéril no hay entre ellas.
Como cachos de granada son tus sienes entre tus guedejas.
Sesenta son las reinas, y ochenta las concubinas, y las doncellas sin cuento:
Mas una es la paloma mía, la perfecta mía; única es á su madre, escogida á la que la engendró. Viéronla las doncellas, y llamáronla bienaventurada; las reinas y las concubinas, y la alabaron.
¿Quién es ésta que se muestra como el alba, hermosa como la luna, esclarecida como el sol, imponente como ejércitos en orden?
Al huerto de los nogales descendí á ver los frutos del valle, y para ver si brotaban las vides, si florecían los granados.
No lo supe: hame mi alma hecho como los carros de Amminadab.
Tórnate, tórnate, oh Sulamita; tórnate, tórnate, y te miraremos. ¿Qué veréis en la Sulamita? Como la reunión de dos campamentos.
¡CUÁN hermosos son tus pies en los calzados, oh hija de príncipe! Los contornos de tus muslos son como joyas, obra de mano de excelente maestro.
Tu ombligo, como una taza redonda, que no le falta bebida. Tu vientre, como montón de trigo, cercado de lirios.
Tus dos pechos, como dos cabritos mellizos de gama.
Tu cuello, como torre de marfil; tus ojos, como las pesqueras de Hesbón junto á la puerta de Batrabbim; tu nariz, como la torre del Líbano, que mira hacia Damasco.
Tu cabeza encima de ti, como el Carmelo; y el cabello de tu cabeza, como la púrpura del rey ligada en los corredores.
¡Qué hermosa eres, y cuán suave, oh amor deleitoso!
¡Y tu estatura es semejante á la palma, y tus pechos á los racimos!
Yo dije: Subiré á la palma, asiré sus ramos: y tus pechos serán ahora como racimos de vid, y el olor de tu boca como de manzanas;
Y tu paladar como el buen vino, que se entra á mi amado suavemente, y hace hablar los labios de los viejos.
Yo soy de mi amado, y conmigo tiene su contentamiento.
